package daemon

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Shard is this instance's part of the fleet: the UPSs whose stable hash
// (FNV-1a 64 of the UPS id) modulo Count is Index. Sharding by UPS keeps
// every string (the peer group) on one instance.
type Shard struct {
	Index, Count uint64
}

// ParseShard reads "I/N" (0 <= I < N).
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/3", s)
	}
	idx, err1 := strconv.ParseUint(i, 10, 32)
	cnt, err2 := strconv.ParseUint(n, 10, 32)
	if err1 != nil || err2 != nil || cnt == 0 || idx >= cnt {
		return Shard{}, fmt.Errorf("shard %q: want I/N with 0 <= I < N, e.g. 0/3", s)
	}
	return Shard{Index: idx, Count: cnt}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Of returns the shard index of a UPS among count shards.
func Of(ups string, count uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(ups))
	return h.Sum64() % count
}

// Owns reports whether the UPS belongs to this shard.
func (s Shard) Owns(ups string) bool { return s.Count <= 1 || Of(ups, s.Count) == s.Index }

// filter keeps the samples of this shard's UPSs, in place.
func (s Shard) filter(reg *telemetry.Registry, b []telemetry.Sample) []telemetry.Sample {
	if s.Count <= 1 {
		return b
	}
	out := b[:0]
	for _, x := range b {
		if s.Owns(reg.Info(x.Entity).Entity.UPS) {
			out = append(out, x)
		}
	}
	return out
}
