package progtype_test

import (
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/progtype"
)

// BenchmarkRun measures one run's set-up and result around a small program
// (Reset, the interpreter, Finish), per packet, as a pcap loop does it.
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		name string
		typ  progtype.Type
		src  string
		ctx  []int // the context accesses, as the verifier finds them
	}{
		{"xdp", progtype.XDP, "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr0 = 2\nexit", []int{0, 1}},
		{"xdp_adjust_head", progtype.XDP, "r2 = -14\ncall 44\nr0 = 2\nexit", nil},
		{"sched_cls", progtype.SchedCLS, "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr0 = *(u32 *)(r1 + 8)\nexit", []int{0, 1, 2}},
		{"sched_cls_store_bytes", progtype.SchedCLS, "r6 = r1\n*(u32 *)(r10 - 4) = 0\nr2 = 0\nr3 = r10\nr3 += -4\nr4 = 4\nr5 = 0\ncall 9\nr0 = 0\nexit", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			k := mustKind(b, c.typ)
			p, err := k.Convert(mustParse(b, c.src), c.ctx)
			if err != nil {
				b.Fatal(err)
			}
			ip, err := fast.Load(p.Insns, engine.Options{Helpers: helperTable(k), UnsafeFastUnverified: true})
			if err != nil {
				b.Fatal(err)
			}
			in := progtype.Input{Data: ipv4UDP()}
			var st helpers.State
			run, err := p.NewRun(in)
			if err != nil {
				b.Fatal(err)
			}
			st.Hook = run
			m := ip.Engine().NewMachine()
			var regions []engine.Region
			for b.Loop() {
				if err := run.Reset(in); err != nil {
					b.Fatal(err)
				}
				regions = regions[:0]
				for _, r := range run.Regions() {
					regions = append(regions, engine.Region(r))
				}
				r0, err := m.Run(ip, &engine.Args{Regs: [5]uint64{run.Ctx()}, Regions: regions, Packet: run.Packet(), State: &st})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := run.Finish(r0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
