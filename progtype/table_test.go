package progtype_test

import (
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestKind_HelperTable: one table gives the verifier's prototypes and the
// engine's implementations, for the same ids, and says why a call to any
// other helper is refused.
func TestKind_HelperTable(t *testing.T) {
	xdp := mustKind(t, progtype.XDP)
	for _, tc := range []struct {
		name    string
		kind    *progtype.Kind
		license string
		id      int32
		wantErr string // "" when the call is allowed
	}{
		{"generic", xdp, "GPL", helpers.IDMapLookupElem, ""},
		{"the type's own", xdp, "GPL", 44 /* bpf_xdp_adjust_head */, ""},
		{"GPL-only, GPL", xdp, "Dual BSD/GPL", helpers.IDTracePrintk, ""},
		{"GPL-only, not GPL", xdp, "MIT", helpers.IDTracePrintk, `bpf_trace_printk (helper 6) is GPL-only and the program's license "MIT" is not GPL-compatible`},
		{"not in Linux", xdp, "GPL", 100000, "call to helper 100000, which Linux does not have"},
		{"not for the type", xdp, "GPL", 26 /* bpf_skb_load_bytes */, "xdp programs may not call bpf_skb_load_bytes (helper 26), as in Linux"},
		{"not implemented", xdp, "GPL", 100 /* bpf_tcp_check_syncookie */, "bpf_tcp_check_syncookie (helper 100) is not implemented in user space yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := tc.kind.HelperTable(tc.license)
			err := table.Check(tc.id)
			_, proto := table.Protos[tc.id]
			_, fn := table.Funcs[tc.id]
			if tc.wantErr == "" {
				if err != nil || !proto || !fn {
					t.Fatalf("Check: %v; in Protos %v, in Funcs %v; want allowed, in both", err, proto, fn)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check: %v; want %q", err, tc.wantErr)
			}
		})
	}
}

// TestKind_HelperTable_sameIDs: every helper the verifier may accept a call
// to, the engine can call, and the other way round, for every type.
func TestKind_HelperTable_sameIDs(t *testing.T) {
	for _, typ := range []progtype.Type{progtype.XDP, progtype.SchedCLS, progtype.SocketFilter, progtype.Kprobe, progtype.Tracepoint, progtype.SockOps, progtype.SkLookup} {
		table := mustKind(t, typ).HelperTable("GPL")
		if len(table.Protos) == 0 || len(table.Protos) != len(table.Funcs) {
			t.Errorf("%s: %d prototypes, %d implementations", typ, len(table.Protos), len(table.Funcs))
		}
		for id := range table.Protos {
			if table.Funcs[id] == nil {
				t.Errorf("%s: bpf_%s has a prototype and no implementation", typ, helpers.Name(id))
			}
			if !mustKind(t, typ).Allowed(id) {
				t.Errorf("%s: bpf_%s is in the table and not allowed", typ, helpers.Name(id))
			}
		}
	}
}
