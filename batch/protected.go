package batch

import "strings"

// Protected is a target's list of users it never disables, downgrades or
// toggles: exact ids, and globs where * stands for any run of characters
// (svc-*, *@contractor.example.com). No other character is special: user
// ids may hold ?, [ and the like. Patterns and users are compared without
// regard to case and without the vendor's id-form prefix on either side
// (README "targets.yaml"): a person is protected however a row spells them.
type Protected struct {
	id    Identity
	exact map[string]string // normalised pattern → pattern as configured
	globs []glob
}

// glob is one pattern with a star, split at its stars once normalised.
type glob struct {
	parts   []string
	pattern string // as configured
}

// NewProtected reads the patterns of a protected list for a target whose
// vendor compares users by id (nil: byte for byte).
func NewProtected(patterns []string, id Identity) Protected {
	if id == nil {
		id = ExactIdentity{}
	}
	p := Protected{id: id, exact: map[string]string{}}
	for _, pat := range patterns {
		n := p.normal(pat)
		switch {
		case strings.Contains(n, "*"):
			p.globs = append(p.globs, glob{parts: strings.Split(n, "*"), pattern: pat})
		case p.exact[n] == "":
			p.exact[n] = pat
		}
	}
	return p
}

// normal is the form patterns and users are compared in.
func (p Protected) normal(s string) string { return strings.ToLower(p.id.Bare(s)) }

// Match returns the first pattern, as configured, that user matches.
func (p Protected) Match(user string) (string, bool) {
	if p.Empty() {
		return "", false
	}
	n := p.normal(user)
	if pat, ok := p.exact[n]; ok {
		return pat, true
	}
	for _, g := range p.globs {
		if globMatch(g.parts, n) {
			return g.pattern, true
		}
	}
	return "", false
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
