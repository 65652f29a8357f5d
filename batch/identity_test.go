package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// kiiLike is an identity with Kii's prefixes and folded case, as the kii
// adapter declares it (batch imports no adapter).
var kiiLike = PrefixIdentity{Prefixes: []string{"LOGIN_NAME:", "EMAIL:", "PHONE:"}, FoldCase: true}

// TestProtectedMatchesAnySpelling: a pattern matches a user without regard
// to case and with or without the vendor's prefix on either side, and
// names the pattern as configured.
func TestProtectedMatchesAnySpelling(t *testing.T) {
	p := NewProtected([]string{"LOGIN_NAME:boss", "breakglass", "svc-*", "*@Contractor.example.com", "EMAIL:a*b*c"}, kiiLike)
	for user, want := range map[string]string{
		"boss": "LOGIN_NAME:boss", "LOGIN_NAME:Boss": "LOGIN_NAME:boss", "login_name:BOSS": "LOGIN_NAME:boss",
		"LOGIN_NAME:breakglass": "breakglass", "BreakGlass": "breakglass",
		"LOGIN_NAME:svc-backup": "svc-*", "SVC-": "svc-*",
		"EMAIL:Jo@contractor.EXAMPLE.com": "*@Contractor.example.com",
		"abc":                             "EMAIL:a*b*c", "LOGIN_NAME:aXbYc": "EMAIL:a*b*c",
		"bosss": "", "xsvc-1": "", "LOGIN_NAME:boss2": "", "ab": "", "acb": "", "PHONE:breakglass2": "",
	} {
		got, ok := p.Match(user)
		if got != want || ok != (want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", user, got, ok, want)
		}
	}
	// A vendor without prefixes: case is still ignored, a prefix is text.
	exact := NewProtected([]string{"Admin-1", "LOGIN_NAME:x"}, nil)
	for user, want := range map[string]bool{"admin-1": true, "ADMIN-1": true, "x": false, "login_name:X": true} {
		if _, ok := exact.Match(user); ok != want {
			t.Errorf("exact identity: Match(%q) = %v, want %v", user, ok, want)
		}
	}
}

// TestRunProtectedByReadIdentities: where the vendor reads, a pattern
// matching any name the read returns holds a disable before any write; an
// enable of the same user still runs.
func TestRunProtectedByReadIdentities(t *testing.T) {
	ra := &readerAdapter{mockAdapter: &mockAdapter{}}
	ra.ReadFunc = func(_ context.Context, op Op, _ int) (State, error) {
		names := map[string][]string{
			"userName:bjensen": {"id-1", "bjensen", "Barbara@Example.com"},
			"id-2":             {"id-2", "jsmith", "js@example.com"},
			"id-3":             {"id-3", "plain"},
		}[op.User]
		return State{HTTPStatus: 200, Current: "active", InState: op.Action == Enable, Identities: names}, nil
	}
	r := newRunner(2, map[string]Adapter{"a": ra})
	r.Targets["a"].Protected = NewProtected([]string{"barbara@example.com", "userName:JSmith"}, PrefixIdentity{Prefixes: []string{"userName:"}, FoldCase: true})
	ops := []Op{
		newOp(0, "a", "userName:bjensen", Disable),
		newOp(1, "a", "id-2", Disable),
		newOp(2, "a", "id-3", Disable),
		newOp(3, "a", "id-2", Enable),
	}
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource(ops), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	for i, want := range map[int]string{0: `protected: matches "barbara@example.com"`, 1: `protected: matches "userName:JSmith"`} {
		if got[i].Outcome != Skipped || got[i].Detail != want {
			t.Errorf("row %d: %s %q, want skipped %q", i, got[i].Outcome, got[i].Detail, want)
		}
	}
	if got[2].Outcome != Applied || got[3].Outcome != Already {
		t.Errorf("unprotected disable %s, enable of a protected user %s; want applied, already", got[2].Outcome, got[3].Outcome)
	}
	for _, c := range ra.Calls() {
		if c.Kind == "apply" && c.Op.Index != 2 {
			t.Errorf("row %d (%s) was written", c.Op.Index, c.Op.User)
		}
	}
}

// parseOps parses csv for one kii-like target "a" and returns its rows.
func parseOps(t *testing.T, csv string, repeats bool) []Row {
	t.Helper()
	targets := Targets{"a": withRulesOf("epixel", TargetInfo{Vendor: "kii", Actions: Actions, Identity: kiiLike}), "b": {Vendor: "other", Actions: Actions}}
	open := func() (*Parser, error) { return NewParser(strings.NewReader(csv), targets) }
	var opts ParseOptions
	if repeats {
		r, err := FindRepeats(open, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Repeats = r
	}
	p, err := NewParserOptions(strings.NewReader(csv), targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var rows []Row
	for {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
}

// TestRunOneUserManySpellingsInOrder: rows naming one user in different
// spellings run in input order, never two at once.
func TestRunOneUserManySpellingsInOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("target,user,action\n")
	spellings := []string{"LOGIN_NAME:leo", "LOGIN_NAME:Leo", "leo", "login_name:LEO", "LOGIN_NAME:mia", "Mia"}
	for i := range 300 {
		b.WriteString("a," + spellings[i%len(spellings)] + ",disable\n")
	}
	var ops []Op
	for _, row := range parseOps(t, b.String(), false) {
		ops = append(ops, row.Op)
	}
	var mu sync.Mutex
	inFlight, peak, order := map[string]int{}, 0, map[string][]int{}
	m := &mockAdapter{ApplyFunc: func(_ context.Context, op Op, _ int) (Reply, error) {
		who := kiiLike.Key(op.User)
		mu.Lock()
		inFlight[who]++
		peak = max(peak, inFlight[who])
		order[who] = append(order[who], op.Index)
		mu.Unlock()
		runtime.Gosched() // every chance to overlap, if the runner let them
		mu.Lock()
		inFlight[who]--
		mu.Unlock()
		return Reply{HTTPStatus: 200}, nil
	}}
	r := newRunner(4, map[string]Adapter{"a": m})
	if err := runSafely(t, r, sliceSource(ops), &memSink{}); err != nil {
		t.Fatal(err)
	}
	if peak > 1 {
		t.Errorf("%d rows of one user were in flight at once", peak)
	}
	want := map[string]int{"leo": 200, "mia": 100}
	for who, got := range order {
		if !slices.IsSorted(got) || len(got) != want[who] {
			t.Errorf("%s: rows ran in order %v, want its %d rows in input order", who, got, want[who])
		}
	}
}

// TestRepeatsDuplicatesAndConflicts: rows of one target, user (by
// identity) and effective_at that repeat the first exactly are duplicates
// of it; rows that contradict make every row of their group invalid, each
// naming the first other row it contradicts. Different effective_at,
// targets or aspects (status, role) never meet.
func TestRepeatsDuplicatesAndConflicts(t *testing.T) {
	csv := `target,user,action,role,place_genealogy,block_user,effective_at
a,LOGIN_NAME:leo,disable,,,,
a,LOGIN_NAME:Leo,block,,,,
a,leo,disable,,,,
a,LOGIN_NAME:leo,upgrade-role,Member,,,
a,LOGIN_NAME:LEO,upgrade-role,member,,,
b,LOGIN_NAME:leo,disable,,,,
b,LOGIN_NAME:Leo,disable,,,,
a,mia,disable,,,,2026-01-01
a,mia,enable,,,,2026-01-15
a,mia,disable,,,,2026-01-01T00:00:00Z
a,t1,toggle-status,,,,
a,t1,toggle-status,,,,
a,t1,toggle-status,,,,
a,r1,upgrade-role,Member,,,
a,r1,downgrade-role,Customer,,,
a,s1,disable,,,,
a,s1,disable,,,,
a,s1,enable,,,,
a,d1,downgrade-role,Customer,,true,
a,d1,downgrade-role,Customer,,false,
a,x1,disable,,,,
a,x1,bogus,,,,
a,x1,disable,,,,
`
	wantDup := map[int]int{3: 2, 4: 2, 6: 5, 11: 9, 24: 22}
	wantConflict := map[int]int{12: 13, 13: 12, 14: 12, 15: 16, 16: 15, 17: 19, 18: 19, 19: 17, 20: 21, 21: 20}
	for _, row := range parseOps(t, csv, true) {
		if row.Line == 23 { // invalid for itself: never part of a group
			if row.Valid() || strings.Contains(problemText(row.Problems), "conflicts") {
				t.Errorf("line 23: %v", row.Problems)
			}
			continue
		}
		if got := row.Op.DuplicateOf; got != wantDup[row.Line] {
			t.Errorf("line %d: DuplicateOf %d, want %d", row.Line, got, wantDup[row.Line])
		}
		other, conflicted := wantConflict[row.Line]
		switch {
		case conflicted && (row.Valid() || !strings.HasPrefix(row.Problems[0].Msg, fmt.Sprintf("conflicts with line %d:", other))):
			t.Errorf("line %d: %v, want conflicts with line %d", row.Line, row.Problems, other)
		case !conflicted && !row.Valid():
			t.Errorf("line %d: %v, want valid", row.Line, row.Problems)
		}
	}
	// Without Repeats nothing is compared.
	for _, row := range parseOps(t, csv, false) {
		if row.Op.DuplicateOf != 0 || (row.Line != 23 && !row.Valid()) {
			t.Errorf("no repeats: line %d: %d %v", row.Line, row.Op.DuplicateOf, row.Problems)
		}
	}
}

// TestRunSkipsDuplicates: a duplicate row ends skipped, naming the line it
// repeats, with no request.
func TestRunSkipsDuplicates(t *testing.T) {
	m := &mockAdapter{}
	r := newRunner(2, map[string]Adapter{"a": m})
	dup := newOp(1, "a", "LOGIN_NAME:Leo", Disable)
	dup.UserKey, dup.DuplicateOf = "leo", 2
	sink := &memSink{}
	if err := runSafely(t, r, sliceSource([]Op{newOp(0, "a", "LOGIN_NAME:leo", Disable), dup}), sink); err != nil {
		t.Fatal(err)
	}
	got := sink.byIndex(t)
	if got[1].Outcome != Skipped || got[1].Detail != "duplicate of line 2" || got[1].Attempts != 0 {
		t.Errorf("duplicate: %+v", got[1])
	}
	if n := m.count("apply"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestRepeatsSharedFingerprint: two groups whose hashes share the 40-bit
// fingerprint but not all 64 bits stay apart.
func TestRepeatsSharedFingerprint(t *testing.T) {
	const a, b = uint64(0xabcdef0123_000001), uint64(0xabcdef0123_000002)
	r := &Repeats{groups: []repeatGroup{{h: a >> 24 << 24}}, extra: map[uint64]*repeatGroup{}}
	for line, h := range []uint64{a, b, a, b} {
		op := Op{Line: line + 2, Action: Disable}
		if h == b && line == 3 {
			op.Action = Enable
		}
		r.add(h, &op)
	}
	ga, gb := r.group(a), r.group(b)
	if ga == nil || gb == nil || ga == gb {
		t.Fatalf("groups %v %v: want two", ga, gb)
	}
	if ga.first != 2 || ga.other != 0 || gb.first != 3 || gb.other != 5 {
		t.Errorf("group a %+v, group b %+v; want a first 2 (its repeat on line 4 no conflict), b first 3 contradicted on line 5", *ga, *gb)
	}
}
