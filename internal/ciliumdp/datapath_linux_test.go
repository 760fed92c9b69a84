//go:build linux

package ciliumdp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/internal/ciliumdp"
	"github.com/waggle-bpf/waggle/internal/mapdump"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/verifier"
)

// Cilium's datapath of six years (the releases of ciliumsrc.Releases and
// the workplace's tree), built with each release's own Makefile and its
// maxed-out configuration: every program the kernel loads must prepare in
// waggle, and every program both accept and BPF_PROG_TEST_RUN runs must
// give the same verdicts, packets and maps on the same frames.

// prepareGaps are the programs the kernel loads and waggle cannot prepare,
// by tree ("v1.18.4", "workplace"), object and program, with why. An entry
// whose program prepares fails the test, so the list shrinks as the gaps
// close. None today.
var prepareGaps = map[string]string{}

// bothRefuse are the objects and programs waggle refuses that the kernel
// refuses too, by tree, object (and program), with why. Without a kernel a
// refusal not listed fails the test; with one, an entry that either side
// accepts fails it.
var bothRefuse = map[string]string{
	// The sockops objects are loaded by bpftool after the agent pinned
	// their maps: alone, the endpoint-to-policy map of maps has no inner
	// map (no inner_id), and v1.12's bpf_redir needs a sockhash, which
	// holds sockets and redirects between them in the kernel only.
	"v1.10.0/sockops/bpf_sockops":  "map of maps without an inner map",
	"v1.10.0/sockops/bpf_redir":    "map of maps without an inner map",
	"v1.12.19/sockops/bpf_sockops": "map of maps without an inner map",
	"v1.12.19/sockops/bpf_redir":   "map of maps without an inner map; sockhash",
	// clang-19's code for a 2022 source reads the context through a
	// pointer it moved (ctx+12), which the verifier forbids.
	"v1.12.19/bpf_xdp/tail_nodeport_nat_ipv6": "dereference of a modified context pointer",
}

// runGap explains why a program's output packets differ between the
// kernel and waggle: the bytes that may differ and why. Everything else of
// the run (the verdict, the other bytes, the length) must agree.
type runGap struct {
	reason string
	bytes  []int
}

// Run differences that are not waggle bugs: values Linux draws from its
// own random state or its own addresses.
var (
	// Cilium's SNAT picks a source port with bpf_get_prandom_u32 when the
	// original one is taken or out of range (lib/nat.h,
	// __snat_clamp_port_range): the port and the TCP or UDP checksum.
	snatPort = runGap{"SNAT source port from bpf_get_prandom_u32", []int{34, 35, 40, 41, 50, 51}}
	// SRv6 encapsulation puts the packet's hash (bpf_get_hash_recalc) in
	// the outer flow label; Linux hashes flows with a random per-boot key
	// (flow_keys hashrnd): bytes 2-3 of the outer IPv6 header, after an
	// Ethernet header or not (ETH_HLEN=0).
	flowLabel = runGap{"SRv6 outer flow label from the skb hash, which Linux keys with a random per-boot seed", []int{2, 3, 16, 17}}
	// In v1.16, srv6_handling loads ROUTER_IP with LOAD_CONSTANT, an
	// ld_imm64 that Cilium's loader patches with the node's address
	// before loading; unpatched, it loads the address of the constant's
	// data, Linux's or waggle's, into the outer source address (bytes
	// 8-23 of the IPv6 header), with the flow label as above.
	unpatchedRouterIP = runGap{"SRv6 outer source address is ROUTER_IP's unpatched LOAD_CONSTANT, an address of the kernel or of waggle, and the flow label from the skb hash", []int{2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}}
)

// runGaps are the programs whose runs differ between the kernel and waggle
// for a reason that is not a waggle bug, by tree, object and program. An
// entry whose runs all agree exactly fails the test, so the list stays
// true.
var runGaps = map[string]runGap{
	"v1.16.6/bpf_lxc/tail_srv6_encap":                   unpatchedRouterIP,
	"v1.16.6/bpf_host/tail_srv6_encap":                  unpatchedRouterIP,
	"v1.18.4/bpf_lxc/tail_srv6_encap":                   flowLabel,
	"v1.18.4/bpf_host/tail_srv6_encap":                  flowLabel,
	"v1.18.4/bpf_wireguard/tail_srv6_encap":             flowLabel,
	"v1.18.4/bpf_lxc/tail_nodeport_nat_egress_ipv4":     snatPort,
	"v1.18.4/bpf_host/tail_nodeport_nat_egress_ipv4":    snatPort,
	"v1.18.4/bpf_overlay/tail_nodeport_nat_egress_ipv4": snatPort,
	"v1.18.4/bpf_xdp/tail_nodeport_nat_egress_ipv4":     snatPort,
	"workplace/bpf_lxc/tail_srv6_encap":                 flowLabel,
	"workplace/bpf_host/tail_srv6_encap":                flowLabel,
}

// mapSkips are the maps whose contents differ between the kernel and
// waggle by design, by name prefix, with why.
var mapSkips = map[string]string{
	// Connection tracking, NAT, neighbour, affinity and fragment entries
	// carry the time they were made or last used (bpf_mono_now,
	// bpf_ktime_get_ns): each side's clock.
	"cilium_ct":             "entries carry each side's clock (lifetime, last seen)",
	"cilium_snat":           "entries carry each side's clock (created, needs_ct)",
	"cilium_nodeport_neigh": "entries carry each side's clock",
	"cilium_lb4_affinity":   "entries carry each side's clock (last_used)",
	"cilium_lb6_affinity":   "entries carry each side's clock (last_used)",
	"cilium_ipv4_frag":      "entries carry each side's clock",
	"cilium_ipv6_frag":      "entries carry each side's clock",
	// The token buckets of the event rate limiter carry the time of
	// their last refill.
	"cilium_ratelimit": "buckets carry each side's clock (last_topup)",
}

// testRunTypes are the program types BPF_PROG_TEST_RUN runs on a frame.
var testRunTypes = map[ebpf.ProgramType]bool{
	ebpf.XDP: true, ebpf.SchedCLS: true, ebpf.SchedACT: true, ebpf.SocketFilter: true,
	ebpf.CGroupSKB: true, ebpf.LWTIn: true, ebpf.LWTOut: true, ebpf.LWTXmit: true,
}

// stats are one tree's numbers.
type stats struct {
	tree                           string
	objects, failed                int
	programs, kernel, waggle, both int
	compared, runs, agree, masked  int
	mapsCompared                   int
	bothVerifiers                  int            // programs both verifiers refuse
	refused                        map[string]int // the kernel's reasons
	diffs                          []string
	used                           map[string]bool // the entries of the lists met
	verdicts                       map[string]int  // the kernel's, by name
}

// verdict names a program's return value.
func verdict(typ ebpf.ProgramType, ret uint32) string {
	names := map[uint32]string{0: "TC_ACT_OK", 2: "TC_ACT_SHOT", 7: "TC_ACT_REDIRECT", 3: "TC_ACT_PIPE"}
	if typ == ebpf.XDP {
		names = map[uint32]string{0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
	}
	if n, ok := names[ret]; ok {
		return n
	}
	return fmt.Sprintf("%d", int32(ret))
}

// seen records that an entry of bothRefuse, prepareGaps or runGaps was met.
func (st *stats) seen(key string) { st.used[key] = true }

// TestDatapath builds the datapath of every tree and loads, prepares and
// runs every program in the kernel and in waggle. Without root it builds
// and prepares in waggle only; -short skips it (it builds with clang).
func TestDatapath(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	builds := buildTrees(t, ctx)
	kernelErr := kernel.Supported()
	var host *netenv.Host
	if kernelErr == nil {
		var err error
		if host, err = netenv.ReadHost(); err != nil {
			t.Fatalf("reading the test's namespace: %v", err)
		}
	}
	frames := testFrames(t)
	var all []*stats
	used := map[string]bool{}
	ran := map[string]bool{}
	for _, bt := range builds {
		tr, res := bt.tree, bt.res
		ran[tr.key] = true
		st := &stats{tree: tr.name, objects: len(res.Objects), failed: len(res.Failed), refused: map[string]int{}, used: used, verdicts: map[string]int{}}
		all = append(all, st)
		for _, b := range res.Objects {
			t.Run(strings.ReplaceAll(tr.name+"/"+b.Name, " ", "_"), func(t *testing.T) {
				runtime.LockOSThread()
				var cpu0 unix.CPUSet
				cpu0.Set(0)
				if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
					t.Skipf("pin to CPU 0: %v", err)
				}
				st.object(t, tr.key, b, kernelErr, host, frames)
			})
		}
	}
	t.Log("release            objects (failed)  programs  kernel loads  waggle prepares  both  programs run  runs  agree  agree but listed bytes  maps compared")
	for _, st := range all {
		t.Logf("%-18s %7d (%d)  %10d  %12d  %15d  %4d  %12d  %4d  %5d  %22d  %13d",
			st.tree, st.objects, st.failed, st.programs, st.kernel, st.waggle, st.both, st.compared, st.runs, st.agree, st.masked, st.mapsCompared)
		if len(st.verdicts) > 0 {
			t.Logf("    verdicts: %v", st.verdicts)
		}
		reasons := make([]string, 0, len(st.refused))
		for r := range st.refused {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			t.Logf("    refused %d: %s", st.refused[r], r)
		}
		if st.bothVerifiers > 0 {
			t.Logf("    waggle's verifier refuses %d of the programs the kernel refuses, the others for reasons outside the verifier", st.bothVerifiers)
		}
		for _, d := range st.diffs {
			t.Logf("    difference: %s", d)
		}
	}
	// An entry of the lists that no tree met is stale (its object or
	// program is gone, or runs no more); only the trees that ran can say
	// so, and runGaps only with a kernel.
	lists := []map[string]string{bothRefuse, prepareGaps}
	if kernelErr == nil {
		gaps := map[string]string{}
		for key, g := range runGaps {
			gaps[key] = g.reason
		}
		lists = append(lists, gaps)
	}
	for _, list := range lists {
		for key := range list {
			if tr, _, _ := strings.Cut(key, "/"); ran[tr] && !used[key] {
				t.Errorf("%s: listed, but no such object or program was met", key)
			}
		}
	}
	if kernelErr != nil {
		t.Skipf("cilium datapath: prepared in waggle only: %v", kernelErr)
	}
}

func (st *stats) object(t *testing.T, treeName string, b ciliumdp.Built, kernelErr error, host *netenv.Host, frames []frame) {
	def := ciliumdp.DefaultType(b.Name)
	opts := &waggle.CollectionOptions{CPUs: 2, DefaultProgramType: def, Net: host, Trace: io.Discard}
	if sec := ciliumdp.SectionTypes(b.Name); sec != nil {
		if spec, err := ebpf.LoadCollectionSpec(b.Path); err == nil {
			opts.ProgramTypes = map[string]ebpf.ProgramType{}
			opts.AttachTypes = map[string]ebpf.AttachType{}
			for _, ps := range spec.Programs {
				if tt, ok := sec[ps.SectionName]; ok && ps.Type == ebpf.UnspecifiedProgram {
					opts.ProgramTypes[ps.SectionName] = tt.Type
					opts.AttachTypes[ps.SectionName] = tt.Attach
				}
			}
		}
	}
	objKey := treeName + "/" + b.Name
	wc, err := waggle.LoadCollection(b.Path, opts)
	if err != nil {
		// The object itself, every program refused: the kernel must
		// refuse it too.
		_, listed := bothRefuse[objKey]
		st.seen(objKey)
		if kernelErr != nil {
			if !listed {
				t.Errorf("waggle cannot load %s: %v", b.Name, err)
			}
			t.Logf("waggle refuses the object, as the kernel does (bothRefuse): %v", firstLine(err.Error()))
			st.refused["waggle refuses the object (no kernel to ask): "+bothRefuse[objKey]]++
			return
		}
		k, kerr := ciliumdp.LoadKernel(b.Path, def, ciliumdp.SectionTypes(b.Name))
		if kerr == nil {
			k.Close()
			t.Errorf("the kernel loads %s, waggle does not: %v", b.Name, err)
			return
		}
		if !listed {
			t.Errorf("both refuse %s: list it in bothRefuse (kernel: %s; waggle: %s)", b.Name, firstLine(kerr.Error()), firstLine(err.Error()))
		}
		st.refused["the kernel refuses the object: "+ciliumdp.Reason(kerr)]++
		t.Logf("both refuse the object: kernel: %s; waggle: %s", firstLine(kerr.Error()), firstLine(err.Error()))
		return
	}
	if _, listed := bothRefuse[objKey]; listed {
		st.seen(objKey)
		t.Errorf("waggle loads %s now: remove it from bothRefuse", b.Name)
	}
	defer wc.Close()
	names := make([]string, 0, len(wc.Programs))
	for n := range wc.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	werrs := map[string]error{}
	for _, n := range names {
		werrs[n] = wc.Programs[n].Prepare()
		if werrs[n] == nil {
			st.waggle++
		}
	}
	st.programs += len(names)
	if kernelErr != nil {
		for _, n := range names {
			key := objKey + "/" + n
			_, refused := bothRefuse[key]
			_, gap := prepareGaps[key]
			if refused || gap {
				st.seen(key)
			}
			switch {
			case werrs[n] != nil && (refused || gap):
				t.Logf("program %s: waggle refuses it, as listed: %s", n, firstLine(werrs[n].Error()))
			case werrs[n] != nil:
				t.Errorf("waggle cannot prepare %s: %v", n, werrs[n])
			case refused || gap:
				t.Errorf("program %s prepares in waggle now: remove it from its list", n)
			}
		}
		return
	}
	k, err := ciliumdp.LoadKernel(b.Path, def, ciliumdp.SectionTypes(b.Name))
	if err != nil {
		st.refused["the kernel refuses the object: "+ciliumdp.Reason(err)] += len(names)
		t.Logf("the kernel refuses the object: %v", err)
		return
	}
	defer k.Close()
	var both []string
	for _, n := range names {
		key := objKey + "/" + n
		kerr, ok := k.Errs[n]
		if !ok {
			t.Errorf("program %s: in waggle's collection, not in the kernel's", n)
			continue
		}
		_, listed := bothRefuse[key]
		if listed {
			st.seen(key)
		}
		if kerr != nil {
			st.refused["the kernel: "+ciliumdp.Reason(kerr)]++
			t.Logf("program %s: the kernel refuses it: %s", n, firstLine(kerr.Error()))
			switch {
			case werrs[n] != nil && listed:
				t.Logf("program %s: waggle refuses it too: %s", n, firstLine(werrs[n].Error()))
			case errors.Is(werrs[n], verifier.ErrRejected):
				// Both verifiers refuse it: agreement.
				st.bothVerifiers++
				t.Logf("program %s: waggle's verifier refuses it too: %s", n, firstLine(werrs[n].Error()))
			case werrs[n] != nil:
				t.Errorf("program %s: both refuse it: list it in bothRefuse (waggle: %s)", n, firstLine(werrs[n].Error()))
			case listed:
				t.Errorf("program %s prepares in waggle now: remove it from bothRefuse", n)
			default:
				t.Errorf("program %s: waggle's verifier accepts it, the kernel's refuses it (%s)", n, firstLine(kerr.Error()))
			}
			continue
		}
		if listed {
			t.Errorf("program %s: the kernel loads it now: remove it from bothRefuse", n)
		}
		st.kernel++
		why, known := prepareGaps[key]
		if known {
			st.seen(key)
		}
		switch {
		case werrs[n] != nil && known:
			t.Logf("program %s: known gap: %s: %v", n, why, firstLine(werrs[n].Error()))
			st.diffs = append(st.diffs, fmt.Sprintf("%s %s: not prepared (%s)", b.Name, n, why))
			continue
		case werrs[n] != nil:
			t.Errorf("program %s: the kernel loads it, waggle does not: %v", n, werrs[n])
			st.diffs = append(st.diffs, fmt.Sprintf("%s %s: not prepared: %s", b.Name, n, firstLine(werrs[n].Error())))
			continue
		case known:
			t.Errorf("program %s prepares in waggle now: remove it from prepareGaps", n)
		}
		if wt := wc.Programs[n].Type(); wt != k.Progs[n].Type() {
			t.Errorf("program %s: type %s in waggle, %s in the kernel", n, wt, k.Progs[n].Type())
		}
		st.both++
		both = append(both, n)
	}
	if !st.syncProgArrays(t, wc, k) {
		return
	}
	ran := false
	for _, n := range both {
		kp, wp := k.Progs[n], wc.Programs[n]
		if !testRunTypes[kp.Type()] {
			continue
		}
		ran = true
		st.compared++
		key := objKey + "/" + n
		gap, known := runGaps[key]
		if known {
			st.seen(key)
		}
		runs, agree, masked, first := compareRuns(kp, wp, frames, gap.bytes, st.verdicts)
		st.runs += runs
		st.agree += agree
		st.masked += masked
		switch {
		case first != "":
			t.Errorf("program %s: %d of %d runs agree; first difference: %s", n, agree, runs, first)
			st.diffs = append(st.diffs, fmt.Sprintf("%s %s: %d of %d runs differ: %s", b.Name, n, runs-agree, runs, first))
		case masked > 0:
			t.Logf("program %s: %d of %d runs agree but in the bytes runGaps allows: %s", n, masked, runs, gap.reason)
			st.diffs = append(st.diffs, fmt.Sprintf("%s %s: %d of %d runs differ in bytes %v only: %s", b.Name, n, masked, runs, gap.bytes, gap.reason))
		case known:
			t.Errorf("program %s: every run agrees now: remove it from runGaps", n)
		}
	}
	if ran {
		st.mapsCompared += compareMaps(t, wc, k.Coll)
	}
}

// syncProgArrays empties in waggle's prog arrays the slots whose program
// the kernel refused (the kernel's slot stays empty, so a tail call there
// falls through in both), then checks that both hold the same slots.
func (st *stats) syncProgArrays(t *testing.T, wc *waggle.Collection, k *ciliumdp.KernelObject) bool {
	ok := true
	for name, wm := range wc.Maps {
		if wm.Type() != ebpf.ProgramArray {
			continue
		}
		for key, prog := range k.Slots[name] {
			if k.Errs[prog] != nil || k.Progs[prog] == nil {
				if err := wm.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					t.Errorf("prog array %s: delete slot %d: %v", name, key, err)
				}
			}
		}
		var wkeys, kkeys []uint32
		pa, isPA := wm.Underlying().(maps.ProgramArray)
		if !isPA {
			t.Errorf("prog array %s: not a maps.ProgramArray in waggle", name)
			return false
		}
		for key := range wm.MaxEntries() {
			if _, ok := pa.Program(key); ok {
				wkeys = append(wkeys, key)
			}
		}
		if km := k.Coll.Maps[name]; km != nil {
			var key uint32
			var id uint32
			it := km.Iterate()
			for it.Next(&key, &id) {
				kkeys = append(kkeys, key)
			}
		}
		sort.Slice(wkeys, func(i, j int) bool { return wkeys[i] < wkeys[j] })
		sort.Slice(kkeys, func(i, j int) bool { return kkeys[i] < kkeys[j] })
		if fmt.Sprint(wkeys) != fmt.Sprint(kkeys) {
			t.Errorf("prog array %s: slots %v in waggle, %v in the kernel", name, wkeys, kkeys)
			ok = false
		}
	}
	return ok
}

// frame is one input frame and where it came from.
type frame struct {
	name string
	data []byte
}

// testFrames are the bundled capture's first frames and crafted ones: the
// protocols Cilium's datapath branches on.
func testFrames(t *testing.T) []frame {
	var out []frame
	captured, err := capture.ReadFile("../../examples/traffic/traffic.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range captured[:min(24, len(captured))] {
		out = append(out, frame{fmt.Sprintf("capture %d", i), data})
	}
	mac1 := []byte{0x02, 0, 0, 0, 0, 1}
	mac2 := []byte{0x02, 0, 0, 0, 0, 2}
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: typ}
	}
	v4 := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: []byte{10, 0, 1, 5}, DstIP: []byte{10, 0, 2, 7}}
	}
	v6 := func(next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
			SrcIP: []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5},
			DstIP: []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 7}}
	}
	payload := gopacket.Payload([]byte("waggle olddp"))
	craft := func(name string, ls ...gopacket.SerializableLayer) {
		for _, l := range ls {
			switch n := l.(type) {
			case *layers.TCP:
				for _, o := range ls {
					if ip, ok := o.(gopacket.NetworkLayer); ok {
						n.SetNetworkLayerForChecksum(ip)
					}
				}
			case *layers.UDP:
				for _, o := range ls {
					if ip, ok := o.(gopacket.NetworkLayer); ok {
						n.SetNetworkLayerForChecksum(ip)
					}
				}
			case *layers.ICMPv6:
				for _, o := range ls {
					if ip, ok := o.(gopacket.NetworkLayer); ok {
						n.SetNetworkLayerForChecksum(ip)
					}
				}
			}
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatalf("frame %s: %v", name, err)
		}
		out = append(out, frame{name, bytes.Clone(buf.Bytes())})
	}
	craft("ipv4 tcp syn", eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1, Window: 64240}, payload)
	craft("ipv4 udp dns", eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40001, DstPort: 53}, payload)
	craft("ipv4 icmp echo", eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}, payload)
	frag := v4(layers.IPProtocolUDP)
	frag.Flags, frag.FragOffset = layers.IPv4MoreFragments, 0
	craft("ipv4 udp first fragment", eth(layers.EthernetTypeIPv4), frag, &layers.UDP{SrcPort: 40002, DstPort: 8472}, payload)
	craft("ipv6 tcp syn", eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40003, DstPort: 443, SYN: true, Seq: 1, Window: 64240}, payload)
	craft("ipv6 udp", eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40004, DstPort: 53}, payload)
	craft("ipv6 icmp echo", eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, payload)
	craft("arp request", eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: []byte{10, 0, 1, 5}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 1, 1}})
	craft("vlan ipv4 udp", eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, v4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40005, DstPort: 4789}, payload)
	return out
}

// compareRuns runs one program on every frame in both engines. A run
// agrees when the error or verdict and the output packet are the same;
// masked counts the runs whose packets differ only at the offsets allow
// lists; first describes the first run that differs otherwise.
func compareRuns(kp *ebpf.Program, wp *waggle.Program, frames []frame, allow []int, verdicts map[string]int) (runs, agree, masked int, first string) {
	for _, f := range frames {
		runs++
		kopts := &ebpf.RunOptions{Data: f.data, DataOut: make([]byte, len(f.data)+512)}
		wopts := &waggle.RunOptions{Data: f.data, DataOut: make([]byte, len(f.data)+512)}
		kret, kerr := kp.Run(kopts)
		wret, werr := wp.Run(wopts)
		if kerr == nil {
			verdicts[verdict(kp.Type(), kret)]++
		}
		var diff string
		switch {
		case kerr != nil || werr != nil:
			if (kerr == nil) != (werr == nil) || errnoOf(kerr) != errnoOf(werr) {
				diff = fmt.Sprintf("kernel %v, waggle %v", kerr, werr)
			}
		case kret != wret:
			diff = fmt.Sprintf("retval kernel %d, waggle %d", kret, wret)
		case !bytes.Equal(kopts.DataOut, wopts.DataOut):
			d := diffBytes(kopts.DataOut, wopts.DataOut)
			if len(kopts.DataOut) == len(wopts.DataOut) && !slices.ContainsFunc(d, func(i int) bool { return !slices.Contains(allow, i) }) {
				masked++
				continue
			}
			diff = fmt.Sprintf("packet out differs at bytes %v (kernel %d bytes, waggle %d): kernel %x, waggle %x", d, len(kopts.DataOut), len(wopts.DataOut),
				window(kopts.DataOut, d[0]), window(wopts.DataOut, d[0]))
		}
		if diff == "" {
			agree++
		} else if first == "" {
			first = f.name + ": " + diff
		}
	}
	return runs, agree, masked, first
}

// errnoOf returns the errno an error carries (the kernel's or waggle's),
// 0 for none and -1 for an error without one.
func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var ke unix.Errno
	if errors.As(err, &ke) {
		return int(ke)
	}
	var we maps.Errno
	if errors.As(err, &we) {
		return int(we)
	}
	return -1
}

// compareMaps compares the maps whose contents are bytes in both worlds,
// but for those mapSkips explains; it returns how many it compared.
func compareMaps(t *testing.T, wc *waggle.Collection, kc *ebpf.Collection) int {
	n := 0
	for name, wm := range wc.Maps {
		km := kc.Maps[name]
		if km == nil {
			continue
		}
		switch wm.Type() {
		case ebpf.Array, ebpf.PerCPUArray, ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash, ebpf.LPMTrie:
		default:
			continue
		}
		if strings.HasPrefix(name, ".") {
			continue
		}
		skip := false
		for prefix := range mapSkips {
			if strings.HasPrefix(name, prefix) {
				skip = true
			}
		}
		if skip {
			continue
		}
		n++
		mine := mapdump.Waggle(wm)
		theirs, err := mapdump.Kernel(km)
		if err != nil {
			t.Error(err)
		}
		if fmt.Sprint(mine) != fmt.Sprint(theirs) {
			t.Errorf("map %s differs:\nwaggle %v\nkernel %v", name, mine, theirs)
		}
	}
	return n
}

// window is the 24 bytes of b from off, fewer at its end.
func window(b []byte, off int) []byte {
	off = min(off, len(b))
	return b[off:min(off+24, len(b))]
}

// diffBytes lists the offsets where a and b differ (the first 64).
func diffBytes(a, b []byte) []int {
	var out []int
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			out = append(out, i)
			if len(out) == 64 {
				break
			}
		}
	}
	return out
}
