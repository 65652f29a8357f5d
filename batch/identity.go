package batch

import "strings"

// Identity is how a vendor compares the user cells that name its users. A
// user is a person at a vendor, not the text of a cell: "LOGIN_NAME:Leo" and
// "leo" may be one Kii user. Rows of one user run in order, shards split by
// user, duplicates and conflicts, the ledger and history all compare users
// by Key; protected patterns match Bare forms without regard to case.
type Identity interface {
	// Key returns the form two cells share exactly when they name the same
	// user at the vendor, as far as the cells alone tell.
	Key(user string) string
	// Bare returns user without the vendor's id-form prefix
	// ("LOGIN_NAME:boss" → "boss"), or user itself when it has none.
	Bare(user string) string
}

// ExactIdentity compares cells byte for byte and knows no prefixes: the
// identity of a vendor that documents neither.
type ExactIdentity struct{}

// Key returns user as it is.
func (ExactIdentity) Key(user string) string { return user }

// Bare returns user as it is.
func (ExactIdentity) Bare(user string) string { return user }

// PrefixIdentity is a vendor whose user cells may carry an id-form prefix
// ("LOGIN_NAME:", "userName:") and whose ids ignore case when FoldCase is set.
type PrefixIdentity struct {
	// Prefixes are the id-form prefixes, matched without regard to case.
	Prefixes []string
	// FoldCase: the vendor's ids ignore case.
	FoldCase bool
}

// Bare strips the first prefix user starts with.
func (p PrefixIdentity) Bare(user string) string {
	for _, pre := range p.Prefixes {
		if len(user) >= len(pre) && strings.EqualFold(user[:len(pre)], pre) {
			return user[len(pre):]
		}
	}
	return user
}

// Key is the bare id, folded to lower case when the vendor ignores case.
func (p PrefixIdentity) Key(user string) string {
	b := p.Bare(user)
	if p.FoldCase {
		return strings.ToLower(b)
	}
	return b
}
