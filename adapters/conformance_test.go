package adapters

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	pathpkg "path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/declarative"
)

const adaptertestPath = "github.com/userbatch/userbatch/adapters/adaptertest"

// TestEveryVendorRunsTheSuite is rclone's test_all: every vendor in the
// registry runs adaptertest.Run, from a Test function of its own package's
// tests, with a Fixture that names it. The tests are read as Go syntax, so
// a comment, a string or a helper nothing calls does not count.
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

// suiteRuns reads the tests of the packages at paths (with overlay's files
// added to their folders) and returns, per package path, the vendors named
// by the adaptertest.Fixture literals of its tests, for the packages
// (internal or external tests) where a Test function calls adaptertest.Run.
// It reads syntax, resolving names through each file's own imports:
// type-checking the same tests proved no more and took 3 s of CPU.
func suiteRuns(t *testing.T, overlay map[string][]byte, paths ...string) map[string][]string {
	t.Helper()
	self := pkgPath(Vendor{})
	runs := map[string][]string{}
	for _, path := range paths {
		rel, ok := strings.CutPrefix(path, self+"/")
		if !ok {
			t.Fatalf("%s is not under %s: a vendor's package lives in adapters/ (README \"Layout\")", path, self)
		}
		for _, files := range testFiles(t, mustAbs(t, filepath.FromSlash(rel)), overlay) {
			if !slices.ContainsFunc(files, callsRunInTest) {
				continue
			}
			for _, f := range files {
				for _, name := range fixtureVendors(f) {
					if !slices.Contains(runs[path], name) {
						runs[path] = append(runs[path], name)
					}
				}
			}
		}
	}
	return runs
}

// testFiles parses dir's _test.go files that this build includes, and
// overlay's files in dir, and groups them by package: the internal tests,
// and the external (_test).
func testFiles(t *testing.T, dir string, overlay map[string][]byte) map[string][]*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	byPkg := map[string][]*ast.File{}
	fset := token.NewFileSet()
	add := func(name string, src any) {
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		byPkg[f.Name.Name] = append(byPkg[f.Name.Name], f)
	}
	for _, name := range names {
		// As go test does: a file its build constraints leave out does not count.
		if ok, err := build.Default.MatchFile(dir, filepath.Base(name)); err != nil || !ok {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		add(name, nil)
	}
	for name, src := range overlay {
		if filepath.Dir(name) == dir {
			add(name, src)
		}
	}
	return byPkg
}

// imported is the name file f gives the package at path ("" when f does
// not import it).
func imported(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, err := strconv.Unquote(imp.Path.Value); err != nil || p != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return pathpkg.Base(path)
	}
	return ""
}

// isSelector reports whether e is pkg.name.
func isSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || pkg == "" || sel.Sel.Name != name {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == pkg
}

// callsRunInTest reports whether a Test function of f calls
// adaptertest.Run, directly or in a function literal (a subtest).
func callsRunInTest(f *ast.File) bool {
	suite, testing := imported(f, adaptertestPath), imported(f, "testing")
	found := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || !isTestFunc(fd, testing) {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && isSelector(call.Fun, suite, "Run") {
				found = true
			}
			return !found
		})
	}
	return found
}

// isTestFunc: func TestXxx(t *testing.T), which go test runs.
func isTestFunc(fd *ast.FuncDecl, testing string) bool {
	if fd.Recv != nil || fd.Body == nil || !strings.HasPrefix(fd.Name.Name, "Test") {
		return false
	}
	params := fd.Type.Params.List
	if len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	return ok && isSelector(star.X, testing, "T")
}

// fixtureVendors lists the Vendor fields, written as strings, of f's
// adaptertest.Fixture literals.
func fixtureVendors(f *ast.File) []string {
	suite := imported(f, adaptertestPath)
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok || !isSelector(lit.Type, suite, "Fixture") {
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
			if v, ok := kv.Value.(*ast.BasicLit); ok && v.Kind == token.STRING {
				if name, err := strconv.Unquote(v.Value); err == nil {
					names = append(names, name)
				}
			}
		}
		return true
	})
	return names
}

// pkgPath is the package that defines a's type.
func pkgPath(a any) string {
	t := reflect.TypeOf(a)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}
