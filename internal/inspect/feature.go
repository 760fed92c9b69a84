package inspect

import (
	"encoding/json"
	"time"
)

// Probe is the answer to one feature question.
type Probe struct {
	// Name is the feature as bpftool names it: "xdp" (a program type),
	// "lpm_trie" (a map type), "large_insn_limit".
	Name      string
	Available bool
	// Err is set when the probe itself failed, so Available is unknown
	// (false).
	Err string
}

// HelperSet is the helpers one program type may call.
type HelperSet struct {
	ProgType string
	Helpers  []string // "bpf_map_lookup_elem", ...
	// Err says why the helpers were not probed (the type is missing, or
	// cilium/ebpf has no probe for helpers of this type).
	Err string
}

// Features is what `bpftool feature probe kernel` reports about eBPF:
// program types, map types, helpers per program type, and miscellaneous
// features.
type Features struct {
	ProgramTypes []Probe
	MapTypes     []Probe
	Helpers      []HelperSet
	Misc         []Probe
	// Probes counts the questions asked, Elapsed how long they took.
	Probes  int
	Elapsed time.Duration

	err error
}

// Err is why nothing could be probed (not Linux, no privilege), or nil.
func (f *Features) Err() error { return f.err }

// MarshalJSON writes the layout of `bpftool -j feature probe kernel`'s
// sections (keys in probe order):
//
//	{"program_types": {"have_xdp_prog_type": true, ...},
//	 "map_types": {"have_hash_map_type": true, ...},
//	 "helpers": {"xdp_available_helpers": ["bpf_map_lookup_elem", ...], ...},
//	 "misc": {"have_large_insn_limit": true, ...}}
func (f *Features) MarshalJSON() ([]byte, error) {
	b := []byte(`{"program_types":{`)
	b = appendProbes(b, f.ProgramTypes, "have_", "_prog_type")
	b = append(b, `},"map_types":{`...)
	b = appendProbes(b, f.MapTypes, "have_", "_map_type")
	b = append(b, `},"helpers":{`...)
	for i, h := range f.Helpers {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, h.ProgType+"_available_helpers")
		b = append(b, ':')
		if h.Helpers == nil {
			h.Helpers = []string{}
		}
		list, err := json.Marshal(h.Helpers)
		if err != nil {
			return nil, err
		}
		b = append(b, list...)
	}
	b = append(b, `},"misc":{`...)
	b = appendProbes(b, f.Misc, "have_", "")
	return append(b, "}}"...), nil
}

func appendProbes(b []byte, ps []Probe, prefix, suffix string) []byte {
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, prefix+p.Name+suffix)
		if p.Available {
			b = append(b, ":true"...)
		} else {
			b = append(b, ":false"...)
		}
	}
	return b
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
