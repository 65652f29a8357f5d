package adapters_test

import (
	"encoding/json"
	"errors"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters"
)

// corePackages are the packages that must name no vendor (README "Layout").
var corePackages = []string{
	"github.com/userbatch/userbatch/batch/...",
	"github.com/userbatch/userbatch/reports/...",
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job/...",
}

// listed is what `go list -json` says of a package.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func goList(t *testing.T, args ...string) []listed {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

// vendorPackage reports whether path is a vendor's folder (or below it).
func vendorPackage(path string) bool {
	rest, ok := strings.CutPrefix(path, "github.com/userbatch/userbatch/adapters/")
	return ok && slices.Contains(vendorNames(), strings.Split(rest, "/")[0])
}

func vendorNames() []string {
	var names []string
	for _, n := range adapters.Names() {
		if n != adapters.HTTP { // the declarative adapter's folder is "declarative"
			names = append(names, n)
		}
	}
	return append(names, "declarative")
}

// TestCoreImportsNoVendor: batch, reports and job import no vendor's
// package; batch and reports depend on no adapters package at all (the
// arrows run cmd → adapters → batch; README "Layout").
func TestCoreImportsNoVendor(t *testing.T) {
	pkgs := goList(t, append([]string{"-deps=false"}, corePackages...)...)
	if len(pkgs) < 3 {
		t.Fatalf("go list found %d core packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if vendorPackage(imp) {
				t.Errorf("%s imports %s, a vendor's package", p.ImportPath, imp)
			}
		}
	}
	for _, p := range goList(t, "github.com/userbatch/userbatch/batch/...", "github.com/userbatch/userbatch/reports/...") {
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, "github.com/userbatch/userbatch/adapters") {
				t.Errorf("%s depends on %s", p.ImportPath, dep)
			}
		}
	}
}

// TestCoreNamesNoVendor: no identifier, string or comment in the core's
// non-test sources names a registered vendor (a comment may, where it
// cites README).
func TestCoreNamesNoVendor(t *testing.T) {
	names := vendorNames()
	files := 0
	for _, p := range goList(t, corePackages...) {
		for _, f := range p.GoFiles {
			files++
			path := filepath.Join(p.Dir, f)
			for _, hit := range vendorTokens(t, path, names) {
				t.Errorf("%s", hit)
			}
		}
	}
	if files < 20 {
		t.Fatalf("read only %d core files", files)
	}
}

// vendorTokens returns where path's tokens name one of names.
func vendorTokens(t *testing.T, path string, names []string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, scanner.ScanComments)
	var hits []string
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return hits
		}
		if tok == token.COMMENT && strings.Contains(lit, "README") {
			continue
		}
		low := strings.ToLower(lit)
		for _, n := range names {
			if strings.Contains(low, n) {
				hits = append(hits, fset.Position(pos).String()+": names vendor "+n+": "+lit)
			}
		}
	}
}
