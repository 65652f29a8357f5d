package config

// Hostile config files through Load, as an operator (or an attacker who
// can write targets.yaml) would hand them over: aliases that expand to
// billions of values, files of a gigabyte, a secret file that never ends.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// limitsHeap is the most memory Load may take for any file (issue 8).
const limitsHeap = 64 << 20

// limitsLoad runs Load on path with a time limit, and returns the most the
// heap grew while it ran (HeapAlloc, sampled every 2ms: garbage not yet
// collected counts, as it does for the process's memory) and Load's error.
func limitsLoad(t *testing.T, path string, limit time.Duration) (uint64, error) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
			peak = ms.HeapAlloc - base
		}
	}
	for {
		select {
		case err := <-done:
			sample()
			return peak, err
		case <-tick.C:
			sample()
		case <-deadline:
			t.Fatalf("Load(%s) did not return within %v", filepath.Base(path), limit)
		}
	}
}

// limitsTarget is one valid target whose protected list is the given YAML
// flow sequence, after the anchors in head.
func limitsTarget(head, protected string) string {
	return head + "targets:\n  shop:\n    vendor: epixel\n    base_url: https://shop.example.com/api/v2\n" +
		"    apikey: k\n    token: t\n    protected: " + protected + "\n"
}

// limitsLaughs is a billion-laughs document: ten levels of ten aliases to
// the level below, a thousand million "lol"s if expanded; then, to reach
// size bytes, the top level aliased again and again in protected.
func limitsLaughs(size int) string {
	var head strings.Builder
	head.WriteString("lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ")
		fmt.Fprintf(&head, "lol%d: &l%d [%s]\n", i, i, refs)
	}
	// The anchors are top-level keys: the file fails on them only after
	// the alias check, which is what is tested.
	doc := limitsTarget(head.String(), "[*l9]")
	if pad := size - len(doc); pad > 0 {
		n := pad / len("*l9,") // the densest: the most alias nodes per byte
		doc = limitsTarget(head.String(), "["+strings.Repeat("*l9,", n)+"*l9]")
	}
	return doc
}

func limitsWrite(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadRefusesAliases: a billion laughs is refused, naming aliases (or,
// just under the size cap, the number of items it holds, counted before
// any parsing), within
// limitsLoad's minute (the time is logged, not asserted: the machine is
// shared), with the heap under 64 MiB where the expansion would take
// gigabytes.
func TestLoadRefusesAliases(t *testing.T) {
	for _, size := range []int{0, MaxSize - 4096} {
		doc := limitsLaughs(size)
		if len(doc) > MaxSize {
			t.Fatalf("the document is %d bytes, over MaxSize", len(doc))
		}
		t0 := time.Now()
		grew, err := limitsLoad(t, limitsWrite(t, "laughs.yaml", doc), time.Minute)
		took := time.Since(t0)
		t.Logf("%d bytes of aliases: refused in %v, heap grew %d MiB", len(doc), took, grew>>20)
		if err == nil || !strings.Contains(err.Error(), "alias") && !strings.Contains(err.Error(), "list items") {
			t.Errorf("%d bytes of aliases: error %v, want one about YAML aliases", len(doc), err)
		}
		if grew > limitsHeap {
			t.Errorf("%d bytes of aliases: Load's heap grew %d MiB, over %d MiB", len(doc), grew>>20, limitsHeap>>20)
		}
	}
}

// TestLoadRefusesOversizedAliases: the 1.8 MB file of aliases issue 8 met
// is refused by its size, before any YAML is parsed.
func TestLoadRefusesOversizedAliases(t *testing.T) {
	doc := limitsLaughs(1_800_000)
	grew, err := limitsLoad(t, limitsWrite(t, "laughs.yaml", doc), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Errorf("a %d-byte file: error %v, want it refused as larger than 1024 KiB", len(doc), err)
	}
	if grew > 8<<20 {
		t.Errorf("refusing a %d-byte file, the heap grew %d MiB: it was read or parsed past the cap", len(doc), grew>>20)
	}
}

// TestLoadRefusesHugeFiles: a 2 MB file and a 1 GiB one (sparse: no disk
// used) are refused as too large, reading no more than the cap.
func TestLoadRefusesHugeFiles(t *testing.T) {
	for _, size := range []int64{2_000_000, 1 << 30} {
		p := filepath.Join(t.TempDir(), "targets.yaml")
		if err := os.WriteFile(p, []byte(limitsTarget("", "[a]")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		grew, err := limitsLoad(t, p, time.Minute)
		t.Logf("%d bytes: %v; heap grew %d KiB", size, err, grew>>10)
		if err == nil || !strings.Contains(err.Error(), "larger than 1024 KiB") {
			t.Errorf("%d bytes: error %v, want it refused as larger than 1024 KiB", size, err)
		}
		if grew > 8<<20 {
			t.Errorf("%d bytes: Load's heap grew %d MiB: more than the cap was read", size, grew>>20)
		}
	}
}

// TestLoadRefusesEndlessSecretFile: ${file:/dev/zero} is refused as too
// large for a secret instead of reading forever.
func TestLoadRefusesEndlessSecretFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	p := limitsWrite(t, "targets.yaml", strings.Replace(limitsTarget("", "[a]"), "token: t", "token: ${file:/dev/zero}", 1))
	grew, err := limitsLoad(t, p, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "/dev/zero") || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("${file:/dev/zero}: error %v, want it refused as larger than a secret", err)
	}
	if grew > 8<<20 {
		t.Errorf("${file:/dev/zero}: Load's heap grew %d MiB", grew>>20)
	}
}

// TestLoadDenseListMemory: the densest list a file under the size cap can
// hold (half a million one-letter ids in protected, two bytes each) is
// refused for its length with the heap kept under 64 MiB, as every input
// must be (issue 8, "memory stays under 64 MiB for any input").
func TestLoadDenseListMemory(t *testing.T) {
	n := (MaxSize - 512) / len("a,")
	doc := limitsTarget("", "["+strings.Repeat("a,", n)+"a]")
	if len(doc) > MaxSize {
		t.Fatalf("the document is %d bytes, over MaxSize", len(doc))
	}
	grew, err := limitsLoad(t, limitsWrite(t, "dense.yaml", doc), time.Minute)
	t.Logf("%d ids in %d bytes: heap grew %d MiB", n+1, len(doc), grew>>20)
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d protected ids: error %v, want them refused as too many", n+1, err)
	}
	if grew > limitsHeap {
		t.Errorf("%d-byte targets.yaml: the heap grew %d MiB while Load read it, over %d MiB", len(doc), grew>>20, limitsHeap>>20)
	}
}
