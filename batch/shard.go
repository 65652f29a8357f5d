package batch

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is one part of a file split across machines: rows whose (target,
// user) hashes to Index of Count. Every row of a file falls in exactly one
// shard, and all the rows of one (target, user) fall in the same one, so
// their order still holds.
type Shard struct {
	Index, Count int
}

// ParseShard reads "K/N" with 0 <= K < N, as a Kubernetes Indexed Job's
// $(JOB_COMPLETION_INDEX) numbers its pods.
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	ki, kerr := strconv.Atoi(strings.TrimSpace(k))
	ni, nerr := strconv.Atoi(strings.TrimSpace(n))
	if !ok || kerr != nil || nerr != nil || ni < 1 || ki < 0 || ki >= ni {
		return Shard{}, fmt.Errorf("--shard %q: expected K/N with 0 <= K < N, such as 0/4", s)
	}
	return Shard{Index: ki, Count: ni}, nil
}

// String is "K/N"; "" for the whole file.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Includes reports whether the row for (target, user) belongs to the shard.
func (s Shard) Includes(target, user string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write([]byte(user))
	return h.Sum64()%uint64(s.Count) == uint64(s.Index)
}
