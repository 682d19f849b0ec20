// Counts events per key and stamps each event with the running count in the
// header "count" (unkeyed events count under the empty key). Its checkpoint
// has the format every language's counter shares, so a stage can swap
// between languages and keep its counts.
package main

import (
	"encoding/binary"
	"errors"
	"sort"
	"strconv"

	weir "weir.dev/plugin"
)

type Counter struct{ counts map[string]uint64 }

func (s *Counter) Init(weir.Config) error {
	s.counts = map[string]uint64{}
	return nil
}

func (s *Counter) Process(events []weir.Event) weir.Output {
	for i := range events {
		key := string(events[i].Key)
		s.counts[key]++
		events[i].AddHeader("count", []byte(strconv.FormatUint(s.counts[key], 10)))
	}
	return weir.Output{Events: events}
}

// CheckpointExport writes, for each key in byte order: u32 key length, key,
// u64 count (little-endian).
func (s *Counter) CheckpointExport() []byte {
	keys := make([]string, 0, len(s.counts))
	for k := range s.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.LittleEndian.AppendUint64(out, s.counts[k])
	}
	return out
}

func (s *Counter) CheckpointImport(state []byte) error {
	counts := map[string]uint64{}
	for len(state) > 0 {
		if len(state) < 4 {
			return errors.New("checkpoint is truncated")
		}
		n := int(binary.LittleEndian.Uint32(state))
		if len(state) < 4+n+8 {
			return errors.New("checkpoint is truncated")
		}
		counts[string(state[4:4+n])] = binary.LittleEndian.Uint64(state[4+n:])
		state = state[4+n+8:]
	}
	s.counts = counts
	return nil
}

func init() { weir.Export(&Counter{counts: map[string]uint64{}}) }

func main() {}
