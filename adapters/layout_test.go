package adapters_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// coreList is `go list -json` of corePackages, run once for the tests
// that read it: each go list is a few tenths of a second of CPU.
var coreList = sync.OnceValues(func() ([]listed, error) {
	out, err := exec.Command("go", append([]string{"list", "-json"}, corePackages...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
})

func listCore(t *testing.T) []listed {
	t.Helper()
	pkgs, err := coreList()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 3 {
		t.Fatalf("go list found %d core packages", len(pkgs))
	}
	return pkgs
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
	t.Parallel()
	for _, p := range listCore(t) {
		for _, imp := range p.Imports {
			if vendorPackage(imp) {
				t.Errorf("%s imports %s, a vendor's package", p.ImportPath, imp)
			}
		}
		if !strings.HasPrefix(p.ImportPath, "github.com/userbatch/userbatch/batch") &&
			!strings.HasPrefix(p.ImportPath, "github.com/userbatch/userbatch/reports") {
			continue
		}
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
	t.Parallel()
	names := vendorNames()
	files := 0
	for _, p := range listCore(t) {
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
