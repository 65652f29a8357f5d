package adapters

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	"github.com/userbatch/userbatch/adapters/declarative"
)

const adaptertestPath = "github.com/userbatch/userbatch/adapters/adaptertest"

// TestEveryVendorRunsTheSuite is rclone's test_all: every vendor in the
// registry runs adaptertest.Run, from a Test function of its own package's
// tests, with a Fixture that names it. The tests are type-checked, so a
// comment, a string or a helper nothing calls does not count.
func TestEveryVendorRunsTheSuite(t *testing.T) {
	t.Parallel()
	pkgOf := map[string]string{} // vendor name → its adapter's package
	spec, err := declarative.Open("builtin:kii")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vendors {
		settings := fullSettings
		if v.Name == HTTP { // an http target needs a spec; any shipped one
			settings.Spec = spec
		}
		a, err := v.New(settings)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		pkgOf[v.Name] = pkgPath(a)
	}
	// Two probes in the same load: what does not run the suite, in a
	// package whose tests never called it, and the same call that does.
	fooledDir, runsDir := mustAbs(t, "fakehttp"), mustAbs(t, "httpcall")
	overlay := map[string][]byte{
		filepath.Join(fooledDir, "zz_probe_test.go"): []byte(probe("fakehttp_test", "notATest")),
		filepath.Join(runsDir, "zz_probe_test.go"):   []byte(probe("httpcall_test", "TestRuns")),
	}
	const fooled, runs = "github.com/userbatch/userbatch/adapters/fakehttp", "github.com/userbatch/userbatch/adapters/httpcall"
	found := suiteRuns(t, overlay, append(slices.Sorted(maps.Values(pkgOf)), fooled, runs)...)
	if got := found[fooled]; len(got) != 0 {
		t.Errorf("a comment, a string or an uncalled helper was counted as running the suite for %q", got)
	}
	if got := found[runs]; !slices.Equal(got, []string{"epixel"}) {
		t.Errorf("a Test function calling adaptertest.Run was read as running it for %q, want [epixel]", got)
	}
	for _, v := range Vendors {
		if !slices.Contains(found[pkgOf[v.Name]], v.Name) {
			t.Errorf("vendor %s: no Test function in %s's tests runs adaptertest.Run with a Fixture whose Vendor is %q (it runs it for %q)",
				v.Name, pkgOf[v.Name], v.Name, found[pkgOf[v.Name]])
		}
	}
}

// probe is a test file of package pkg that names the suite in a comment and
// a string, and calls it from a function named fn.
func probe(pkg, fn string) string {
	return `package ` + pkg + `

import (
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
)

// TestComment: adaptertest.Run(t, adaptertest.Fixture{Vendor: "epixel"})
func TestComment(t *testing.T) {
	_ = "adaptertest.Run(t, adaptertest.Fixture{Vendor: \"epixel\"})"
}

func ` + fn + `(t *testing.T) {
	adaptertest.Run(t, adaptertest.Fixture{Vendor: "epixel"})
}

var _ = ` + fn + `
`
}

func mustAbs(t *testing.T, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// suiteRuns type-checks the tests of the packages at paths (with overlay's
// files laid over the disk's) and returns, per package path, the vendors
// named by the adaptertest.Fixture literals of its tests, for the packages
// (internal or external tests) where a Test function calls adaptertest.Run.
func suiteRuns(t *testing.T, overlay map[string][]byte, paths ...string) map[string][]string {
	t.Helper()
	cfg := &packages.Config{
		Mode:      packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Tests:     true,
		Overlay:   overlay,
		ParseFile: parseForSuite,
	}
	pkgs, err := packages.Load(cfg, paths...)
	if err != nil {
		t.Fatalf("loading %v: %v", paths, err)
	}
	runs := map[string][]string{}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("%s: %v", p.ID, e)
		}
		if !callsRunInTest(p) {
			continue
		}
		base := strings.TrimSuffix(p.PkgPath, "_test")
		for _, name := range fixtureVendors(p) {
			if !slices.Contains(runs[base], name) {
				runs[base] = append(runs[base], name)
			}
		}
	}
	return runs
}

// parseForSuite parses as go/packages does, less the ast.Object
// resolution go/types does not use: a third of the test's CPU.
func parseForSuite(fset *token.FileSet, filename string, src []byte) (*ast.File, error) {
	return parser.ParseFile(fset, filename, src, parser.AllErrors|parser.ParseComments|parser.SkipObjectResolution)
}

// callsRunInTest reports whether a Test function of p's test files calls
// adaptertest.Run, directly or in a function literal (a subtest).
func callsRunInTest(p *packages.Package) bool {
	found := false
	for _, f := range p.Syntax {
		if !strings.HasSuffix(p.Fset.Position(f.Pos()).Filename, "_test.go") {
			continue
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !isTestFunc(p.TypesInfo, fd) {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && isSuiteRun(p.TypesInfo, call) {
					found = true
				}
				return !found
			})
		}
	}
	return found
}

// isTestFunc: func TestXxx(t *testing.T), which go test runs.
func isTestFunc(info *types.Info, fd *ast.FuncDecl) bool {
	if fd.Recv != nil || fd.Body == nil || !strings.HasPrefix(fd.Name.Name, "Test") {
		return false
	}
	params := fd.Type.Params.List
	return len(params) == 1 && len(params[0].Names) <= 1 && info.TypeOf(params[0].Type).String() == "*testing.T"
}

func isSuiteRun(info *types.Info, call *ast.CallExpr) bool {
	var id *ast.Ident
	switch fun := call.Fun.(type) {
	case *ast.Ident:
		id = fun
	case *ast.SelectorExpr:
		id = fun.Sel
	default:
		return false
	}
	fn, ok := info.Uses[id].(*types.Func)
	return ok && fn.Pkg() != nil && fn.Pkg().Path() == adaptertestPath && fn.Name() == "Run"
}

// fixtureVendors lists the constant Vendor fields of p's adaptertest.Fixture
// literals.
func fixtureVendors(p *packages.Package) []string {
	var names []string
	for _, f := range p.Syntax {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || !isFixture(p.TypesInfo.TypeOf(lit)) {
				return true
			}
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if key, ok := kv.Key.(*ast.Ident); !ok || key.Name != "Vendor" {
					continue
				}
				if v := p.TypesInfo.Types[kv.Value].Value; v != nil && v.Kind() == constant.String {
					names = append(names, constant.StringVal(v))
				}
			}
			return true
		})
	}
	return names
}

func isFixture(t types.Type) bool {
	named, ok := t.(*types.Named)
	if !ok {
		return false
	}
	obj := named.Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == adaptertestPath && obj.Name() == "Fixture"
}

// pkgPath is the package that defines a's type.
func pkgPath(a any) string {
	t := reflect.TypeOf(a)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}
