package batch

import (
	"fmt"
	"testing"
)

// TestShardsPartitionAFile: every row is in exactly one of N shards, and the
// rows of one (target, user) are always in the same one.
func TestShardsPartitionAFile(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8} {
		counts := make([]int, n)
		for i := 0; i < 20000; i++ {
			target, user := fmt.Sprintf("t%d", i%3), fmt.Sprintf("user-%d", i%15000)
			owners := 0
			for k := 0; k < n; k++ {
				if (Shard{Index: k, Count: n}).Includes(target, user) {
					owners++
					counts[k]++
				}
			}
			if owners != 1 {
				t.Fatalf("n=%d: %s/%s is in %d shards", n, target, user, owners)
			}
		}
		for k, c := range counts {
			if n > 1 && (c < 20000/n/2 || c > 20000/n*2) {
				t.Errorf("n=%d: shard %d has %d of 20000 rows: badly balanced", n, k, c)
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "3/4": {3, 4}, " 1 / 2 ": {1, 2}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "1", "4/4", "-1/4", "1/0", "a/b", "1/2/3"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}
