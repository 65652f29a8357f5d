package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignalsCaughtOnce: SIGINT and SIGTERM are caught in one place,
// signalCatcher, and reach the commands from there (as signals for a run,
// as a context for verify and sandbox); no other code calls signal.Notify.
func TestSignalsCaughtOnce(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	var callers []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "signal" && strings.HasPrefix(sel.Sel.Name, "Notify") {
				callers = append(callers, filepath.ToSlash(path))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(callers) != 1 || !strings.HasSuffix(callers[0], "cmd/userbatch/signals.go") {
		t.Errorf("signal.Notify is called in %v; want only cmd/userbatch/signals.go", callers)
	}
}
