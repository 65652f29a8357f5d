package batch

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateExcel = flag.Bool("update-excel", false, "rewrite the Excel fixtures in ../testdata")

// excelFixture is one file as Excel saves it, in ../testdata for the
// binary's tests too, and what parsing it must give.
type excelFixture struct {
	name     string
	content  func() string
	enc      string
	delim    rune
	lines    []int            // the rows' lines
	invalid  map[int]string   // line -> the column with a problem
	users    map[int]string   // line -> the user id read
	problems map[int][]string // line -> words its problem must hold
}

func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

var excelFixtures = []excelFixture{
	{
		// Excel's "Unicode Text": UTF-16 LE with a BOM, tabs, CRLF, a quoted
		// cell over two lines, and the empty rows it leaves at the bottom.
		name: "excel-utf16le.txt",
		content: func() string {
			return utf16LE(crlf(
				"target\tuser\taction\trole\tplace_genealogy\tticket",
				"shop\tjürgen.müller\tdisable\t\t\tOFF-501",
				"shop\t名前\tenable\t\t\tOFF-502",
				"shop\tu5003\tupgrade-role\tPreferred Customer\tTRUE\tROLE-503",
				"shop\tu5004\tdowngrade-role\tCustomer\t\t\"a note\r\non two lines\"",
				"shop\tu5005\tdisable\t\t\t\"OFF-\"\"505\"\"\"",
				"\t\t\t\t\t",
				"\t\t\t\t\t",
			))
		},
		enc: EncodingUTF16LE, delim: '\t', lines: []int{2, 3, 4, 5, 7},
		users: map[int]string{2: "jürgen.müller", 3: "名前", 7: "u5005"},
	},
	{
		// "CSV UTF-8" where the list separator is a semicolon (most of Europe).
		name: "excel-semicolon.csv",
		content: func() string {
			return "\ufeff" + crlf(
				"target;user;action;role;place_genealogy;block_user;ticket",
				"shop;u3001;disable;;;;OFF-301, contract ended",
				"shop;u3002;enable;;;;OFF-302",
				"shop;u3003;upgrade-role;Member;;;ROLE-303",
				"shop;u3004;downgrade-role;Preferred Customer;;TRUE;ROLE-304",
				"shop;Zoë.Ünal;disable;;;;\"OFF-305; rehired\"",
			)
		},
		enc: EncodingUTF8BOM, delim: ';', lines: []int{2, 3, 4, 5, 6},
		users: map[int]string{2: "u3001", 6: "Zoë.Ünal"},
	},
	{
		// A comma CSV with rows of empty cells in the middle and at the bottom.
		name: "excel-trailing-empty.csv",
		content: func() string {
			return crlf(
				"target,user,action,role,place_genealogy,ticket",
				"shop,u4001,disable,,,OFF-401",
				"shop,u4002,enable,,,OFF-402",
				",,,,,",
				"shop,u4003,disable,,,OFF-403",
				",,,,,",
				",,,,,",
				",,,,,",
			)
		},
		enc: EncodingUTF8, delim: ',', lines: []int{2, 3, 5},
		users: map[int]string{5: "u4003"},
	},
	{
		// Long numeric ids that Excel showed in scientific notation, with a
		// decimal point and with a decimal comma; the rows around are valid.
		name: "excel-scientific.csv",
		content: func() string {
			return crlf(
				"target,user,action,ticket",
				"shop,123456789012345678,disable,OFF-601",
				"shop,1.23457E+17,disable,OFF-602",
				"shop,u6003,disable,OFF-603",
				"shop,\"1,23457E+17\",enable,OFF-604",
			)
		},
		enc: EncodingUTF8, delim: ',', lines: []int{2, 3, 4, 5},
		invalid:  map[int]string{3: ColUser, 5: ColUser},
		users:    map[int]string{2: "123456789012345678"},
		problems: map[int][]string{3: {"1.23457E+17", "scientific notation", "Excel", "Text"}, 5: {"1,23457E+17", "Excel"}},
	},
}

// TestExcelFixtures checks the committed fixtures byte for byte against
// their recipes (go test -run TestExcelFixtures -update-excel rewrites
// them), and what parsing them gives.
func TestExcelFixtures(t *testing.T) {
	for _, fx := range excelFixtures {
		t.Run(fx.name, func(t *testing.T) {
			path := filepath.Join("..", "testdata", fx.name)
			want := fx.content()
			if *updateExcel {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-excel to write it)", err)
			}
			if string(got) != want {
				t.Fatalf("%s differs from its recipe: run with -update-excel", path)
			}
			h, rows := parseAllOptions(t, want, testTargets(), ParseOptions{})
			if h.Encoding != fx.enc || h.Delimiter != fx.delim {
				t.Errorf("read as %s, %q; want %s, %q", h.Encoding, h.Delimiter, fx.enc, fx.delim)
			}
			problems := make([][]string, len(rows))
			for i, row := range rows {
				if col, ok := fx.invalid[row.Line]; ok {
					problems[i] = []string{strconv.Itoa(row.Line) + ":" + col}
				}
				if u, ok := fx.users[row.Line]; ok && row.Op.User != u {
					t.Errorf("line %d: user %q, want %q", row.Line, row.Op.User, u)
				}
				for _, word := range fx.problems[row.Line] {
					if len(row.Problems) == 0 || !strings.Contains(row.Problems[0].String(), word) {
						t.Errorf("line %d: problems %v, want one saying %q", row.Line, row.Problems, word)
					}
				}
				if len(row.Record) != len(h.Names) {
					t.Errorf("line %d: cells %q under %q", row.Line, row.Record, h.Names)
				}
			}
			checkRows(t, rows, fx.lines, problems)
		})
	}
}
