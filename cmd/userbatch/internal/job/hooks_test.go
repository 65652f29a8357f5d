package job

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPackageLevelTestHooks: no test overwrites a package-level
// variable of the run's packages (job, and the command in package main):
// such a hook is shared by every test, so they could not run in parallel.
// Tests inject a value instead (an Options field, NotifyTiming,
// globalOptions.now).
func TestNoPackageLevelTestHooks(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "../.."} {
		fset := token.NewFileSet()
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]bool{}
		var tests []*ast.File
		for _, name := range names {
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, "_test.go") {
				tests = append(tests, f)
			} else {
				addVars(vars, f)
			}
		}
		for _, f := range tests {
			ast.Inspect(f, func(n ast.Node) bool {
				as, ok := n.(*ast.AssignStmt)
				if !ok || as.Tok != token.ASSIGN {
					return true
				}
				for _, lhs := range as.Lhs {
					if v := rootIdent(lhs); v != nil && vars[v.Name] && v.Obj == nil {
						t.Errorf("%s: a test sets the package-level %s: inject the value instead", fset.Position(as.Pos()), v.Name)
					}
				}
				return true
			})
		}
	}
}

// addVars adds the package-level variables f declares.
func addVars(vars map[string]bool, f *ast.File) {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				vars[n.Name] = n.Name != "_"
			}
		}
	}
}

// rootIdent is x of x, x.f, x[i] and x.f[i].g.
func rootIdent(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		default:
			return nil
		}
	}
}
