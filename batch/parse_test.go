package batch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// testTargets is a config with one target per vendor, plus a msgkart target
// that sets a default email. A fresh map per call: tests must not share state.
func testTargets() Targets {
	return Targets{
		"shop":         withRules(TargetInfo{Vendor: "epixel", Actions: []Action{Disable, Enable, UpgradeRole, DowngradeRole}}),
		"admin":        {Vendor: "clearsquare", Actions: []Action{ToggleStatus}},
		"app":          {Vendor: "kii", Actions: []Action{Disable, Enable}},
		"chat":         withRules(TargetInfo{Vendor: "msgkart", Actions: []Action{Disable, Enable}}),
		"chat-default": withRules(TargetInfo{Vendor: "msgkart", Actions: []Action{Disable, Enable}, Settings: map[string]string{"email": "default@example.com"}}),
	}
}

// parseAll reads every row of input and fails the test on any error other
// than io.EOF.
func parseAll(t *testing.T, input string, targets Targets) (Header, []Row) {
	t.Helper()
	p, err := NewParser(strings.NewReader(input), targets)
	if err != nil {
		t.Fatalf("NewParser: %v", err)
	}
	var rows []Row
	for {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
	// EOF is sticky: a caller that asks again must not get a row or a panic.
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after EOF = %v, want io.EOF", err)
	}
	return p.Header(), rows
}

// where lists a row's problems as "line:column", sorted, and checks that each
// one is complete and on the row's own line.
func where(t *testing.T, row Row) []string {
	t.Helper()
	out := []string{}
	for _, p := range row.Problems {
		if p.Msg == "" || p.Column == "" {
			t.Errorf("row at line %d: incomplete problem %+v", row.Line, p)
		}
		if p.Line != row.Line {
			t.Errorf("row at line %d: problem %q is on line %d", row.Line, p.Msg, p.Line)
		}
		out = append(out, strconv.Itoa(p.Line)+":"+p.Column)
	}
	slices.Sort(out)
	return out
}

// checkRows asserts each row's line, index and problems ("line:column").
func checkRows(t *testing.T, rows []Row, lines []int, problems [][]string) {
	t.Helper()
	if len(rows) != len(lines) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(lines), rows)
	}
	for i, row := range rows {
		if row.Index != i || row.Line != lines[i] {
			t.Errorf("row %d: Index %d Line %d, want Index %d Line %d", i, row.Index, row.Line, i, lines[i])
		}
		want := slices.Clone(problems[i])
		if want == nil {
			want = []string{}
		}
		slices.Sort(want)
		if got := where(t, row); !slices.Equal(got, want) {
			t.Errorf("row %d (line %d): problems %v, want %v\n%v", i, row.Line, got, want, row.Problems)
		}
		if row.Valid() && (row.Op.Index != row.Index || row.Op.Line != row.Line) {
			t.Errorf("row %d: Op at Index %d Line %d, want %d %d", i, row.Op.Index, row.Op.Line, row.Index, row.Line)
		}
	}
}

func TestParseBOM(t *testing.T) {
	h, rows := parseAll(t, "\ufefftarget,user,action\nshop,u1,disable\n", testTargets())
	if !slices.Equal(h.Names, []string{"target", "user", "action"}) {
		t.Errorf("Names = %q, want the BOM removed", h.Names)
	}
	checkRows(t, rows, []int{2}, [][]string{nil})
	if op := rows[0].Op; op.Target != "shop" || op.User != "u1" || op.Action != Disable {
		t.Errorf("Op = %+v", op)
	}
}

func TestParseCRLF(t *testing.T) {
	in := "target,user,action,note\r\nshop,u1,disable,a\r\nshop,u2,enable,\"two\r\nlines\"\r\nshop,u3,block,c\r\n"
	_, rows := parseAll(t, in, testTargets())
	checkRows(t, rows, []int{2, 3, 5}, [][]string{nil, nil, nil})
	for i, want := range []string{"u1", "u2", "u3"} {
		if got := rows[i].Op.User; got != want {
			t.Errorf("row %d: User = %q, want %q (no CR)", i, got, want)
		}
	}
	if got := rows[0].Record[3]; got != "a" {
		t.Errorf("last cell = %q, want %q: the CR belongs to the line end", got, "a")
	}
}

func TestParseQuotingAndPhysicalLines(t *testing.T) {
	in := "target,user,action,note\n" + // 1
		"shop,\"u,1\",disable,\"a, b\"\n" + // 2
		"shop,u2,disable,\"line one\n" + // 3
		"line two\n" + // 4
		"line three\"\n" + // 5
		"shop,u3,explode,x\n" + // 6: invalid, after a three-line record
		"\n" + // 7: blank, skipped
		"\"shop\",\"u\"\"4\",\"enable\",\"\"\n" + // 8
		"shop,\"u\n" + // 9: a line break inside the user
		"5\",disable,\n" // 10
	_, rows := parseAll(t, in, testTargets())
	checkRows(t, rows, []int{2, 3, 6, 8, 9}, [][]string{nil, nil, {"6:action"}, nil, {"9:user"}})
	if got := rows[0].Op.User; got != "u,1" {
		t.Errorf("quoted comma: User = %q", got)
	}
	if got := rows[1].Record[3]; got != "line one\nline two\nline three" {
		t.Errorf("multi-line note = %q", got)
	}
	if got := rows[3].Op.User; got != `u"4` {
		t.Errorf("doubled quote: User = %q", got)
	}
}

func TestParseHeaderNames(t *testing.T) {
	h, rows := parseAll(t, " Action ,USER,Target,Role,Place_Genealogy\nupgrade-role,u1,shop,member,TRUE\n", testTargets())
	want := map[string]int{ColAction: 0, ColUser: 1, ColTarget: 2, ColRole: 3, ColPlaceGenealogy: 4}
	if !reflect.DeepEqual(h.Known, want) {
		t.Errorf("Known = %v, want %v", h.Known, want)
	}
	if !slices.Equal(h.Names, []string{" Action ", "USER", "Target", "Role", "Place_Genealogy"}) {
		t.Errorf("Names = %q, want them as written", h.Names)
	}
	checkRows(t, rows, []int{2}, [][]string{nil})
	op := rows[0].Op
	if op.Target != "shop" || op.User != "u1" || op.Action != UpgradeRole || op.Role != "Member" || !op.Flag(ColPlaceGenealogy) {
		t.Errorf("Op = %+v", op)
	}
}

func TestParsePassthrough(t *testing.T) {
	in := "ticket,user,Note,action,target\n" +
		"OFF-1,u1,\"  keeps, spaces  \",disable,shop\n" +
		"0042,u2,'=SUM(A1),enable,shop\n"
	h, rows := parseAll(t, in, testTargets())
	if !slices.Equal(h.Passthrough, []int{0, 2}) {
		t.Errorf("Passthrough = %v, want [0 2]", h.Passthrough)
	}
	checkRows(t, rows, []int{2, 3}, [][]string{nil, nil})
	wants := [][]string{
		{"OFF-1", "u1", "  keeps, spaces  ", "disable", "shop"},
		{"0042", "u2", "'=SUM(A1)", "enable", "shop"},
	}
	for i, want := range wants {
		if !slices.Equal(rows[i].Record, want) {
			t.Errorf("row %d: Record = %q, want %q", i, rows[i].Record, want)
		}
	}
}

// TestParseRecordAsRead: Record holds the known columns as written too,
// untrimmed and with the apostrophe, so failed.csv reproduces the input.
func TestParseRecordAsRead(t *testing.T) {
	_, rows := parseAll(t, "target,user,action\n shop ,'-u1 , Block \n", testTargets())
	checkRows(t, rows, []int{2}, [][]string{nil})
	if want := []string{" shop ", "'-u1 ", " Block "}; !slices.Equal(rows[0].Record, want) {
		t.Errorf("Record = %q, want %q", rows[0].Record, want)
	}
	if op := rows[0].Op; op.Target != "shop" || op.User != "-u1" || op.Action != Disable {
		t.Errorf("Op = %+v", op)
	}
}

func TestParseAllProblemsAtOnce(t *testing.T) {
	in := "target,user,action,role,place_genealogy,block_user,email\n" +
		"shop,u1,disable,,,,\n" + // 2
		"nowhere,,explode,,maybe,perhaps,nope\n" + // 3: six problems
		"shop,u3,upgrade-role,Admin,,,\n" + // 4
		"shop,u4,enable,,,,\n" + // 5
		"admin,u5,disable,,,,\n" + // 6
		"chat,,disable,,,,\n" // 7
	_, rows := parseAll(t, in, testTargets())
	checkRows(t, rows, []int{2, 3, 4, 5, 6, 7}, [][]string{
		nil,
		{"3:target", "3:user", "3:action", "3:place_genealogy", "3:block_user", "3:email"},
		{"4:role"},
		nil,
		{"6:action"},
		{"7:user", "7:email"},
	})
}

// rowCase is one data row under the full header, validated against
// testTargets. problems lists the columns expected to be wrong.
type rowCase struct {
	name     string
	row      string
	problems []string
	check    func(t *testing.T, op Op)
}

const fullHeader = "target,user,action,role,place_genealogy,block_user,email\n"

func runRowCases(t *testing.T, cases []rowCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rows := parseAll(t, fullHeader+tc.row+"\n", testTargets())
			want := []string{}
			for _, c := range tc.problems {
				want = append(want, "2:"+c)
			}
			checkRows(t, rows, []int{2}, [][]string{want})
			if tc.check != nil && !t.Failed() {
				tc.check(t, rows[0].Op)
			}
		})
	}
}

func wantOp(want Op) func(t *testing.T, op Op) {
	return func(t *testing.T, op Op) {
		t.Helper()
		want.Line = 2
		if !reflect.DeepEqual(op, want) {
			t.Errorf("Op = %+v\n want %+v", op, want)
		}
	}
}

func TestParseUser(t *testing.T) {
	a255, a256 := strings.Repeat("a", 255), strings.Repeat("a", 256)
	e255, e256 := strings.Repeat("é", 255), strings.Repeat("é", 256)
	runRowCases(t, []rowCase{
		{name: "missing", row: "shop,,disable,,,,", problems: []string{ColUser}},
		{name: "blank", row: "shop,   ,disable,,,,", problems: []string{ColUser}},
		{name: "trimmed", row: "shop,  u1  ,disable,,,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: Disable})},
		{name: "255 characters", row: "shop," + a255 + ",disable,,,,",
			check: wantOp(Op{Target: "shop", User: a255, Action: Disable})},
		{name: "256 characters", row: "shop," + a256 + ",disable,,,,", problems: []string{ColUser}},
		{name: "255 two-byte characters", row: "shop," + e255 + ",disable,,,,",
			check: wantOp(Op{Target: "shop", User: e255, Action: Disable})},
		{name: "256 two-byte characters", row: "shop," + e256 + ",disable,,,,", problems: []string{ColUser}},
		{name: "tab inside", row: "shop,\"a\tb\",disable,,,,", problems: []string{ColUser}},
		{name: "line break inside", row: "shop,\"a\nb\",disable,,,,", problems: []string{ColUser}},
		{name: "DEL", row: "shop,a\x7fb,disable,,,,", problems: []string{ColUser}},
		{name: "not UTF-8", row: "shop,a\xffb,disable,,,,", problems: []string{ColUser}},
		{name: "leading zeros stay", row: "shop,0123,disable,,,,",
			check: wantOp(Op{Target: "shop", User: "0123", Action: Disable})},
		{name: "number-like stays", row: "shop,1e5,disable,,,,",
			check: wantOp(Op{Target: "shop", User: "1e5", Action: Disable})},
		{name: "kii phone", row: "app,PHONE:+819012345678,disable,,,,",
			check: wantOp(Op{Target: "app", User: "PHONE:+819012345678", Action: Disable})},
	})
}

// TestParseNeutralisedCells: the reports write '= '+ '- '@ so that a
// spreadsheet does not run them; reading such a file back must undo it.
func TestParseNeutralisedCells(t *testing.T) {
	runRowCases(t, []rowCase{
		{name: "equals", row: "shop,'=u1,disable,,,,", check: wantOp(Op{Target: "shop", User: "=u1", Action: Disable})},
		{name: "plus", row: "app,'+81901,disable,,,,", check: wantOp(Op{Target: "app", User: "+81901", Action: Disable})},
		{name: "minus", row: "shop,'-u1,disable,,,,", check: wantOp(Op{Target: "shop", User: "-u1", Action: Disable})},
		{name: "at", row: "shop,'@u1,disable,,,,", check: wantOp(Op{Target: "shop", User: "@u1", Action: Disable})},
		{name: "email", row: "chat,u1,disable,,,,'@x@example.com",
			check: wantOp(Op{Target: "chat", User: "u1", Action: Disable, Cells: []Cell{{Column: "email", Value: "@x@example.com"}}})},
		{name: "other apostrophe kept", row: "shop,'u1,disable,,,,", check: wantOp(Op{Target: "shop", User: "'u1", Action: Disable})},
		{name: "lone apostrophe kept", row: "shop,',disable,,,,", check: wantOp(Op{Target: "shop", User: "'", Action: Disable})},
		{name: "only the first", row: "shop,''=u1,disable,,,,", check: wantOp(Op{Target: "shop", User: "''=u1", Action: Disable})},
	})
}

func TestParseTarget(t *testing.T) {
	runRowCases(t, []rowCase{
		{name: "unknown", row: "nowhere,u1,disable,,,,", problems: []string{ColTarget}},
		{name: "empty with several targets", row: ",u1,disable,,,,", problems: []string{ColTarget}},
		{name: "case matters", row: "SHOP,u1,disable,,,,", problems: []string{ColTarget}},
		{name: "trimmed", row: " app ,u1,disable,,,,", check: wantOp(Op{Target: "app", User: "u1", Action: Disable})},
	})
	p := func(t *testing.T, rows []Row) Problem {
		t.Helper()
		if len(rows) != 1 || len(rows[0].Problems) != 1 {
			t.Fatalf("rows = %+v", rows)
		}
		return rows[0].Problems[0]
	}
	_, rows := parseAll(t, "target,user,action\nnowhere,u1,disable\n", testTargets())
	if got := p(t, rows); got.Value != "nowhere" || !strings.Contains(got.Accepted, "admin, app, chat, chat-default, shop") {
		t.Errorf("problem = %+v, want the value and the configured targets", got)
	}
}

func TestParseSingleTargetDefault(t *testing.T) {
	one := Targets{"shop": testTargets()["shop"]}
	for _, tc := range []struct {
		name, in string
		targets  Targets
		want     string
		problems []string
	}{
		{name: "no target column", in: "user,action\nu1,disable\n", targets: one, want: "shop"},
		{name: "empty cell", in: "target,user,action\n,u1,disable\n", targets: one, want: "shop"},
		{name: "blank cell", in: "target,user,action\n  ,u1,disable\n", targets: one, want: "shop"},
		{name: "named", in: "target,user,action\nshop,u1,disable\n", targets: one, want: "shop"},
		{name: "another name", in: "target,user,action\nother,u1,disable\n", targets: one, problems: []string{"2:target"}},
		{name: "no config, no column", in: "user,action\nu1,disable\n", targets: nil, want: ""},
		{name: "no config, any target", in: "target,user,action\nanything,u1,toggle-status\n", targets: nil, want: "anything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rows := parseAll(t, tc.in, tc.targets)
			checkRows(t, rows, []int{2}, [][]string{tc.problems})
			if tc.problems == nil && rows[0].Op.Target != tc.want {
				t.Errorf("Target = %q, want %q", rows[0].Op.Target, tc.want)
			}
		})
	}
}

func TestParseNoTargetColumnSeveralTargets(t *testing.T) {
	_, err := NewParser(strings.NewReader("user,action\nu1,disable\n"), testTargets())
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 1 {
		t.Fatalf("err = %v, want an InputError on line 1", err)
	}
	if !strings.Contains(ie.Msg, "target") || !strings.Contains(ie.Msg, "chat-default") {
		t.Errorf("message %q should ask for a target column and list the targets", ie.Msg)
	}
}

func TestParseAction(t *testing.T) {
	cases := []rowCase{
		{name: "unknown", row: "shop,u1,explode,,,,", problems: []string{ColAction}},
		{name: "empty", row: "shop,u1,,,,,", problems: []string{ColAction}},
		{name: "not an alias", row: "shop,u1,delete,,,,", problems: []string{ColAction}},
	}
	aliases := map[string]Action{
		"disable": Disable, "block": Disable, "deactivate": Disable, "suspend": Disable,
		"DISABLE": Disable, "Block": Disable, "DeActivate": Disable, "SUSPEND": Disable,
		"enable": Enable, "unblock": Enable, "activate": Enable, "unsuspend": Enable,
		"Enable": Enable, "UNBLOCK": Enable, "Activate": Enable, "UnSuspend": Enable,
		" disable ": Disable,
	}
	for alias, want := range aliases {
		cases = append(cases, rowCase{name: alias, row: "app,u1," + alias + ",,,,",
			check: wantOp(Op{Target: "app", User: "u1", Action: want})})
	}
	cases = append(cases, rowCase{name: "TOGGLE-STATUS", row: "admin,u1,TOGGLE-STATUS,,,,",
		check: wantOp(Op{Target: "admin", User: "u1", Action: ToggleStatus})})
	runRowCases(t, cases)
}

func TestParseUnsupportedAction(t *testing.T) {
	for _, tc := range []struct {
		row, accepted string
	}{
		{"admin,u1,disable,,,,", "toggle-status"},
		{"shop,u1,toggle-status,,,,", "disable, enable, upgrade-role, downgrade-role"},
		{"app,u1,upgrade-role,Member,,,", "disable, enable"},
		{"chat,u1,downgrade-role,Customer,,,ops@example.com", "disable, enable"},
	} {
		t.Run(tc.row, func(t *testing.T) {
			_, rows := parseAll(t, fullHeader+tc.row+"\n", testTargets())
			checkRows(t, rows, []int{2}, [][]string{{"2:action"}})
			p := rows[0].Problems[0]
			if !strings.HasSuffix(p.Accepted, tc.accepted) || !strings.Contains(p.String(), tc.accepted) {
				t.Errorf("problem %q does not name what the vendor supports (%s)", p, tc.accepted)
			}
		})
	}
}

func TestParseRoles(t *testing.T) {
	runRowCases(t, []rowCase{
		{name: "upgrade without role", row: "shop,u1,upgrade-role,,,,", problems: []string{ColRole}},
		{name: "upgrade to Customer", row: "shop,u1,upgrade-role,Customer,,,", problems: []string{ColRole}},
		{name: "upgrade to Admin", row: "shop,u1,upgrade-role,Admin,,,", problems: []string{ColRole}},
		{name: "upgrade to member", row: "shop,u1,upgrade-role,member,,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: UpgradeRole, Role: "Member"})},
		{name: "upgrade to PREFERRED CUSTOMER", row: "shop,u1,upgrade-role,PREFERRED CUSTOMER,TRUE,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: UpgradeRole, Role: "Preferred Customer", Cells: []Cell{{Column: "place_genealogy", Value: "true"}}})},
		{name: "upgrade to Preferred Customer, no genealogy", row: "shop,u1,upgrade-role,Preferred Customer,false,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: UpgradeRole, Role: "Preferred Customer", Cells: []Cell{{ColPlaceGenealogy, "false"}}})},
		{name: "place_genealogy required", row: "shop,u1,upgrade-role,Preferred Customer,,,", problems: []string{ColPlaceGenealogy}},
		{name: "place_genealogy blank", row: "shop,u1,upgrade-role,preferred customer,  ,,", problems: []string{ColPlaceGenealogy}},
		{name: "place_genealogy invalid", row: "shop,u1,upgrade-role,Preferred Customer,maybe,,", problems: []string{ColPlaceGenealogy}},
		{name: "place_genealogy not needed for Member", row: "shop,u1,upgrade-role,Member,,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: UpgradeRole, Role: "Member"})},
		{name: "downgrade without role", row: "shop,u1,downgrade-role,,,,", problems: []string{ColRole}},
		{name: "downgrade to Member", row: "shop,u1,downgrade-role,Member,,,", problems: []string{ColRole}},
		{name: "downgrade to customer", row: "shop,u1,downgrade-role,customer,,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: DowngradeRole, Role: "Customer"})},
		{name: "downgrade to preferred customer and block", row: "shop,u1,downgrade-role, preferred customer ,,Yes,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: DowngradeRole, Role: "Preferred Customer", Cells: []Cell{{Column: "block_user", Value: "true"}}})},
		{name: "block_user invalid", row: "shop,u1,downgrade-role,Customer,,nope,", problems: []string{ColBlockUser}},
		{name: "role on disable is ignored", row: "shop,u1,disable,Whatever,,,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: Disable})},
	})
}

func TestParseBooleans(t *testing.T) {
	var cases []rowCase
	for s, want := range map[string]bool{
		"true": true, "TRUE": true, "True": true, "yes": true, "YES": true, "Yes": true, "1": true, " true ": true,
		"false": false, "FALSE": false, "False": false, "no": false, "NO": false, "nO": false, "0": false,
	} {
		cases = append(cases, rowCase{name: "place_genealogy " + s, row: "shop,u1,upgrade-role,Preferred Customer," + s + ",,",
			check: wantOp(Op{Target: "shop", User: "u1", Action: UpgradeRole, Role: "Preferred Customer", Cells: []Cell{{Column: "place_genealogy", Value: fmt.Sprint(want)}}})})
		cases = append(cases, rowCase{name: "block_user " + s, row: "shop,u1,downgrade-role,Customer,," + s + ",",
			check: wantOp(Op{Target: "shop", User: "u1", Action: DowngradeRole, Role: "Customer", Cells: []Cell{{Column: "block_user", Value: fmt.Sprint(want)}}})})
	}
	for _, s := range []string{"maybe", "t", "f", "y", "n", "2", "-1", "truee", "on", "off"} {
		cases = append(cases,
			rowCase{name: "place_genealogy " + s, row: "shop,u1,upgrade-role,Member," + s + ",,", problems: []string{ColPlaceGenealogy}},
			rowCase{name: "block_user " + s, row: "shop,u1,downgrade-role,Customer,," + s + ",", problems: []string{ColBlockUser}})
	}
	cases = append(cases, rowCase{name: "block_user defaults to false", row: "shop,u1,downgrade-role,Customer,,,",
		check: wantOp(Op{Target: "shop", User: "u1", Action: DowngradeRole, Role: "Customer"})})
	runRowCases(t, cases)
}

func TestParseEmail(t *testing.T) {
	runRowCases(t, []rowCase{
		{name: "msgkart without any email", row: "chat,u1,disable,,,,", problems: []string{ColEmail}},
		{name: "msgkart with row email", row: "chat,u1,enable,,,, ops@example.com ",
			check: wantOp(Op{Target: "chat", User: "u1", Action: Enable, Cells: []Cell{{Column: "email", Value: "ops@example.com"}}})},
		{name: "msgkart with target email", row: "chat-default,u1,disable,,,,",
			check: wantOp(Op{Target: "chat-default", User: "u1", Action: Disable})},
		{name: "msgkart row email overrides", row: "chat-default,u1,disable,,,,me@example.com",
			check: wantOp(Op{Target: "chat-default", User: "u1", Action: Disable, Cells: []Cell{{Column: "email", Value: "me@example.com"}}})},
		{name: "email without @", row: "chat,u1,disable,,,,ops.example.com", problems: []string{ColEmail}},
		{name: "email without @ on another vendor", row: "shop,u1,disable,,,,nope", problems: []string{ColEmail}},
		{name: "other vendors need none", row: "app,u1,disable,,,,",
			check: wantOp(Op{Target: "app", User: "u1", Action: Disable})},
	})
	// Without an email column, a msgkart target with no default email fails every row.
	_, rows := parseAll(t, "target,user,action\nchat,u1,disable\nchat-default,u2,disable\n", testTargets())
	checkRows(t, rows, []int{2, 3}, [][]string{{"2:email"}, nil})
}

func TestParseFieldCount(t *testing.T) {
	in := "target,user,action\n" + // 1
		"shop,u1,disable\n" + // 2
		"shop,u2\n" + // 3: too few
		"shop,u3,disable,extra\n" + // 4: too many
		"shop,\"u4\n\",disable,x\n" + // 5-6: too many, spanning two lines
		"shop,u5,enable\n" // 7
	_, rows := parseAll(t, in, testTargets())
	checkRows(t, rows, []int{2, 3, 4, 5, 7}, [][]string{nil, {"3:(row)"}, {"4:(row)"}, {"5:(row)"}, nil})
	if rows[4].Op.User != "u5" {
		t.Errorf("the row after bad ones: Op = %+v", rows[4].Op)
	}
	if !strings.Contains(rows[1].Problems[0].Accepted, "3") {
		t.Errorf("problem %q should say how many fields the header has", rows[1].Problems[0])
	}
}

// utf16LE and utf16BE encode s as UTF-16 with a byte order mark, as
// Excel's "Unicode Text" does.
func utf16LE(s string) string {
	b := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

func utf16BE(s string) string {
	b := []byte{0xFE, 0xFF}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return string(b)
}

func TestParseInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		rows     int // valid rows before the error
		line     int
		msg      string
	}{
		{name: "empty", in: "", msg: "empty"},
		{name: "blank lines", in: "\n\n\r\n", msg: "empty"},
		{name: "BOM only", in: "\ufeff", msg: "empty"},
		{name: "UTF-16 BOM only", in: utf16LE(""), msg: "empty"},
		{name: "UTF-16 LE without BOM", in: utf16LE("target,user,action\n")[2:], msg: "UTF-16 without a byte order mark"},
		{name: "UTF-16 BE without BOM", in: utf16BE("target,user,action\n")[2:], msg: "UTF-16 without a byte order mark"},
		{name: "UTF-32 LE", in: "\xff\xfe\x00\x00t\x00\x00\x00,\x00\x00\x00u\x00\x00\x00", msg: "NUL"},
		{name: "binary", in: "\x7fELF\x02\x01\x01\x00\x00\x00\x00", msg: "NUL"},
		{name: "NUL in the header", in: "target,user,action\x00\nshop,u1,disable\n", msg: "NUL"},
		{name: "unterminated quote in the header", in: "target,\"user,action\nshop,u1,disable\n", line: 1, msg: "quote"},
		{name: "unterminated quote", in: "target,user,action\nshop,u1,disable\nshop,\"u2,disable\nshop,u3,enable\n", rows: 1, line: 3, msg: "quote"},
		{name: "unterminated quote after a multi-line field",
			in: "target,user,action,note\nshop,u1,disable,\"a\nb\"\nshop,u2,enable,\"open\n", rows: 1, line: 4, msg: "quote"},
		{name: "bare quote", in: "target,user,action\nshop,u1,disable\nshop,u\"2,disable\n", rows: 1, line: 3, msg: "quote"},
		{name: "no user column", in: "target,action\nshop,disable\n", line: 1, msg: "user"},
		{name: "no action column", in: "target,user\nshop,u1\n", line: 1, msg: "action"},
		{name: "neither", in: "name,what\nx,y\n", line: 1, msg: "user or action"},
		{name: "semicolons", in: "name;what\nx;y\n", line: 1, msg: "semicolon-separated"},
		{name: "after blank lines", in: "\n,,\n\r\ntarget,user\nshop,u1\n", line: 4, msg: "action"},
		{name: "duplicate column", in: "target,user,action,User\nshop,u1,disable,u2\n", line: 1, msg: "twice"},
		{name: "duplicate passthrough", in: "target,user,action,note, NOTE\nshop,u1,disable,a,b\n", line: 1, msg: "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rows int
			err := func() error {
				p, err := NewParser(strings.NewReader(tc.in), testTargets())
				if err != nil {
					return err
				}
				for {
					row, err := p.Next()
					if err != nil {
						return err
					}
					if !row.Valid() {
						t.Errorf("unexpected invalid row: %v", row.Problems)
					}
					rows++
				}
			}()
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *InputError", err, err)
			}
			if ie.Line != tc.line || rows != tc.rows {
				t.Errorf("InputError at line %d after %d rows, want line %d after %d rows: %v", ie.Line, rows, tc.line, tc.rows, ie)
			}
			if !strings.Contains(ie.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", ie.Error(), tc.msg)
			}
		})
	}
}

// TestParseHeaderOnlyIsZeroRows: a header and no data rows (a night with
// no leavers) is a valid file of 0 rows, not an error.
func TestParseHeaderOnlyIsZeroRows(t *testing.T) {
	for name, in := range map[string]string{
		"header only":            "target,user,action\n",
		"header and blank lines": "target,user,action\n\n\n",
		"UTF-16 header only":     utf16BE("target\tuser\taction\r\n"),
		"only empty cells":       "target,user,action\n,,\n,\n , ,\r\n\"\",\" \",\n,,",
	} {
		p, err := NewParser(strings.NewReader(in), testTargets())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if row, err := p.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: Next = %+v, %v; want io.EOF", name, row, err)
		}
		if got := p.Header().Names; !slices.Equal(got, []string{"target", "user", "action"}) {
			t.Errorf("%s: header %q", name, got)
		}
	}
}

// TestParseZeroWidthPassthrough: a header with a zero-width character is not
// the column it looks like; a passthrough column "\u200bemail" must not be
// validated as the email.
func TestParseZeroWidthPassthrough(t *testing.T) {
	h, rows := parseAll(t, "target,user,action,\u200bemail\nshop,u1,disable,not-an-email\n", testTargets())
	if !slices.Equal(h.Passthrough, []int{3}) {
		t.Errorf("Passthrough = %v, want [3]", h.Passthrough)
	}
	checkRows(t, rows, []int{2}, [][]string{nil})
	if got := rows[0].Record[3]; got != "not-an-email" {
		t.Errorf("passthrough cell = %q, want %q", got, "not-an-email")
	}
}

// TestParseUnnamedPassthrough: two columns without a name are both
// passthrough (the duplicate check spares empty names) and must each keep
// their own cell.
func TestParseUnnamedPassthrough(t *testing.T) {
	h, rows := parseAll(t, "target,user,action,,\nshop,u1,disable,a,b\n", testTargets())
	if !slices.Equal(h.Passthrough, []int{3, 4}) {
		t.Errorf("Passthrough = %v, want [3 4]", h.Passthrough)
	}
	checkRows(t, rows, []int{2}, [][]string{nil})
	if want := []string{"shop", "u1", "disable", "a", "b"}; !slices.Equal(rows[0].Record, want) {
		t.Errorf("Record = %q, want %q", rows[0].Record, want)
	}
}

// TestParseOpsOnly: without the cells, rows carry the same ops and problems.
func TestParseOpsOnly(t *testing.T) {
	in := "ticket,target,user,action,role,place_genealogy,block_user,email,,\n" +
		"T1,shop,u1,disable,,,,,a,b\n" +
		"T2,nowhere,,explode,Admin,maybe,perhaps,nope,,\n" +
		"T3,shop,u3\n" +
		"T4,shop,\"u\n4\",upgrade-role,preferred customer,yes,,,,\n" +
		"T5,chat,u5,enable,,,,ops@example.com,,\n"
	_, full := parseAll(t, in, testTargets())
	p, err := NewParser(strings.NewReader(in), testTargets())
	if err != nil {
		t.Fatal(err)
	}
	p.OpsOnly()
	for i, want := range full {
		got, err := p.Next()
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if len(got.Record) != 0 {
			t.Errorf("row %d: Record = %q, want none", i, got.Record)
		}
		want.Record, got.Record = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row %d:\n ops only %+v\n full     %+v", i, got, want)
		}
	}
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last row: %v, want io.EOF", err)
	}
}

// TestParseFixtures runs the top-level CSV fixtures the docs and other tests
// point at, so that they stay what their names say.
func TestParseFixtures(t *testing.T) {
	dir := filepath.Join("..", "testdata")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	_, rows := parseAll(t, read("ops-valid.csv"), testTargets())
	for _, row := range rows {
		if !row.Valid() {
			t.Errorf("ops-valid.csv line %d: %v", row.Line, row.Problems)
		}
	}
	if len(rows) == 0 {
		t.Error("ops-valid.csv has no rows")
	}
	_, rows = parseAll(t, read("ops-invalid.csv"), testTargets())
	for _, row := range rows {
		if row.Valid() {
			t.Errorf("ops-invalid.csv line %d is valid: every row there should have a problem", row.Line)
		}
	}
}

// TestParseInvisibleCharacters: a user id holding a character that shows
// as nothing is refused, and the message names the code point.
func TestParseInvisibleCharacters(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want string
	}{
		{0x200B, "U+200B (ZERO WIDTH SPACE), an invisible character"},
		{0x200C, "U+200C (ZERO WIDTH NON-JOINER)"},
		{0x200D, "U+200D (ZERO WIDTH JOINER)"},
		{0x200E, "U+200E (LEFT-TO-RIGHT MARK)"},
		{0xFEFF, "U+FEFF (ZERO WIDTH NO-BREAK SPACE (byte order mark)), an invisible character"},
		{0x00AD, "U+00AD (SOFT HYPHEN)"},
		{0x2060, "U+2060 (WORD JOINER)"},
		{0x202A, "U+202A (LEFT-TO-RIGHT EMBEDDING)"},
		{0x202B, "U+202B (RIGHT-TO-LEFT EMBEDDING)"},
		{0x202C, "U+202C (POP DIRECTIONAL FORMATTING)"},
		{0x202D, "U+202D (LEFT-TO-RIGHT OVERRIDE)"},
		{0x202E, "U+202E (RIGHT-TO-LEFT OVERRIDE), an invisible character"},
		{0x2066, "U+2066 (LEFT-TO-RIGHT ISOLATE)"},
		{0x2067, "U+2067 (RIGHT-TO-LEFT ISOLATE)"},
		{0x2068, "U+2068 (FIRST STRONG ISOLATE)"},
		{0x2069, "U+2069 (POP DIRECTIONAL ISOLATE)"},
		{0x2028, "U+2028 (LINE SEPARATOR), an invisible line break"},
		{0x2029, "U+2029 (PARAGRAPH SEPARATOR), an invisible line break"},
		{0x3164, "U+3164 (HANGUL FILLER)"},
		{0xE0041, "U+E0041, an invisible character"}, // TAG LATIN CAPITAL LETTER A: unnamed here
		{0x0085, "U+0085 (NEXT LINE), a control character"},
		{0x0009, "U+0009 (CHARACTER TABULATION), a control character"},
		{0x000A, "U+000A (LINE FEED), a control character"},
		{0x0001, "U+0001, a control character"},
		{0x007F, "U+007F (DELETE), a control character"},
	} {
		user := "ali" + string(tc.r) + "ce"
		t.Run(tc.want, func(t *testing.T) {
			_, rows := parseAll(t, "target,user,action\nshop,\""+user+"\",disable\n", testTargets())
			checkRows(t, rows, []int{2}, [][]string{{"2:user"}})
			p := rows[0].Problems[0]
			if !strings.Contains(p.Msg, "contains "+tc.want) || p.Value != user {
				t.Errorf("problem %+v, want %q and the value", p, tc.want)
			}
		})
	}
	// Only the first one is named.
	_, rows := parseAll(t, "target,user,action\nshop,\u202eu\u200b1,disable\n", testTargets())
	if msg := rows[0].Problems[0].Msg; !strings.Contains(msg, "U+202E") || strings.Contains(msg, "U+200B") {
		t.Errorf("message %q, want the first invisible character only", msg)
	}
}

// TestParseVisibleCharacters: letters from any script, emoji and a
// no-break space inside are ids; spaces at either end are trimmed.
func TestParseVisibleCharacters(t *testing.T) {
	var cases []rowCase
	for _, u := range []string{"zoë", "名前", "Ωmega", "مستخدم", "a\u00a0b", "🙂"} {
		cases = append(cases, rowCase{name: u, row: "shop," + u + ",disable,,,,",
			check: wantOp(Op{Target: "shop", User: u, Action: Disable})})
	}
	cases = append(cases, rowCase{name: "line separator at the end is trimmed", row: "shop,u1\u2028,disable,,,,",
		check: wantOp(Op{Target: "shop", User: "u1", Action: Disable})})
	runRowCases(t, cases)
}

func TestParseEffectiveAt(t *testing.T) {
	const header = "target,user,action,effective_at\n"
	tokyo := time.FixedZone("UTC+9", 9*3600)
	for _, tc := range []struct {
		name, cell string
		loc        *time.Location
		want       time.Time
	}{
		{name: "blank", cell: "", want: time.Time{}},
		{name: "spaces", cell: "   ", want: time.Time{}},
		{name: "date, UTC by default", cell: "2026-12-31", want: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)},
		{name: "date in a zone", cell: "2026-12-31", loc: tokyo, want: time.Date(2026, 12, 30, 15, 0, 0, 0, time.UTC)},
		{name: "RFC 3339 Z", cell: "2026-12-31T18:30:00Z", want: time.Date(2026, 12, 31, 18, 30, 0, 0, time.UTC)},
		{name: "RFC 3339 offset", cell: " 2026-12-31T18:30:00+01:00 ", want: time.Date(2026, 12, 31, 17, 30, 0, 0, time.UTC)},
		{name: "RFC 3339 offset ignores the zone", cell: "2026-12-31T18:30:00-05:00", loc: tokyo, want: time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)},
		{name: "fractional seconds", cell: "2026-12-31T18:30:00.25Z", want: time.Date(2026, 12, 31, 18, 30, 0, 250e6, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rows := parseAllOptions(t, header+"shop,u1,disable,"+tc.cell+"\n", testTargets(), ParseOptions{Location: tc.loc})
			checkRows(t, rows, []int{2}, [][]string{nil})
			got := rows[0].Op.EffectiveAt
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("EffectiveAt = %v, want %v in UTC", got, tc.want)
			}
			if rows[0].Record[3] != tc.cell {
				t.Errorf("Record = %q, want the cell as written", rows[0].Record)
			}
		})
	}
	for _, cell := range []string{"31/12/2026", "12/31/2026", "46022", "2026-13-01", "2026-02-30", "tomorrow",
		"2026-12-31 18:30", "2026-12-31T18:30:00", "2026-12-31T18:30Z", "31.12.2026"} {
		t.Run(cell, func(t *testing.T) {
			_, rows := parseAll(t, header+"shop,u1,disable,"+cell+"\n", testTargets())
			checkRows(t, rows, []int{2}, [][]string{{"2:effective_at"}})
			p := rows[0].Problems[0]
			if p.Value != cell || !strings.Contains(p.Msg, cell) || !strings.Contains(p.Accepted, "2026-12-31T18:00:00Z") ||
				!strings.Contains(p.Accepted, "UTC") {
				t.Errorf("problem %+v, want the value and what is accepted", p)
			}
			if strings.ContainsAny(cell, "/.") && !strings.Contains(p.Msg, "spreadsheet") {
				t.Errorf("message %q should say a spreadsheet may have reformatted the date", p.Msg)
			}
			if !strings.Contains(p.Accepted, "RFC 3339 time like 2026-12-31T18:00:00+01:00") || !strings.Contains(p.Accepted, "a date like 2026-12-31") {
				t.Errorf("accepted %q should name both forms", p.Accepted)
			}
		})
	}
	// A date and time with no zone: the message says so, and how to write it.
	for _, cell := range []string{"2026-12-31 18:30", "2026-12-31T18:30:00"} {
		_, rows := parseAllOptions(t, header+"shop,u1,disable,"+cell+"\n", testTargets(), ParseOptions{Location: time.FixedZone("UTC+1", 3600)})
		if p := rows[0].Problems[0]; !strings.Contains(p.Msg, "without a time zone") || !strings.Contains(p.Msg, "write 2026-12-31T18:30:00+01:00") {
			t.Errorf("%s: message %q", cell, p.Msg)
		}
	}
	// Problems in other columns and in effective_at are all reported.
	_, rows := parseAll(t, header+"shop,,disable,soon\n", testTargets())
	checkRows(t, rows, []int{2}, [][]string{{"2:user", "2:effective_at"}})
}
