package batch

import "strings"

// Protected is a target's list of users it never disables, downgrades or
// toggles: exact ids, and globs where * stands for any run of characters
// (svc-*, *@contractor.example.com). No other character is special: user
// ids may hold ?, [ and the like.
type Protected struct {
	exact map[string]bool
	globs [][]string // each glob split at its stars
}

// NewProtected reads the patterns of a protected list.
func NewProtected(patterns []string) Protected {
	p := Protected{exact: map[string]bool{}}
	for _, pat := range patterns {
		if strings.Contains(pat, "*") {
			p.globs = append(p.globs, strings.Split(pat, "*"))
		} else {
			p.exact[pat] = true
		}
	}
	return p
}

// Match reports whether user is protected.
func (p Protected) Match(user string) bool {
	if p.exact[user] {
		return true
	}
	for _, g := range p.globs {
		if globMatch(g, user) {
			return true
		}
	}
	return false
}

// Empty reports whether nothing is protected.
func (p Protected) Empty() bool { return len(p.exact) == 0 && len(p.globs) == 0 }

// globMatch matches s against a glob split at its stars: the first part is
// a prefix, the last a suffix, and the others appear in order between.
func globMatch(parts []string, s string) bool {
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}
