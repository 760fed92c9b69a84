//go:build linux

package waggle_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/internal/mapdump"
	"github.com/waggle-bpf/waggle/internal/mapjson"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
)

// xdp-filter's map values (xdp-filter/common_kern_user.h): flags in the
// low bits, a hit counter above COUNTER_SHIFT, the same on every CPU
// (map_set_flags).
const (
	flagSrc = 1 << 0
	flagDst = 1 << 1
	flagTCP = 1 << 2
	flagUDP = 1 << 3
)

// ruleSet is a set of map contents, as xdp-filter's port, ip and ether
// commands (or libxdp, for the dispatcher's configuration) write them, in
// the form --map-init reads.
type ruleSet struct {
	name string
	doc  string
}

// portKey is xdp-filter's key for a port: htons(port) in a __u32.
func portKey(port uint16) string {
	return hexKey(binary.LittleEndian.AppendUint32(nil, uint32(port>>8|port<<8)))
}

func hexKey(b []byte) string {
	var s []string
	for _, c := range b {
		s = append(s, fmt.Sprintf(`"0x%02x"`, c))
	}
	return "[" + strings.Join(s, ",") + "]"
}

func rule(key string, flags int) string {
	return fmt.Sprintf(`{"key": %s, "value": %d}`, key, flags)
}

func ipv4Key(s string) string { return hexKey(net.ParseIP(s).To4()) }

// ipv6Key is a struct in6_addr, typed through its union.
func ipv6Key(s string) string {
	var parts []string
	for _, b := range net.ParseIP(s).To16() {
		parts = append(parts, fmt.Sprint(b))
	}
	return `{"in6_u": {"u6_addr8": [` + strings.Join(parts, ",") + `]}}`
}

func macKey(s string) string {
	hw, _ := net.ParseMAC(s)
	var parts []string
	for _, b := range hw {
		parts = append(parts, fmt.Sprint(b))
	}
	return `{"addr": [` + strings.Join(parts, ",") + `]}`
}

func doc(m map[string][]string) string {
	var parts []string
	for name, entries := range m {
		parts = append(parts, fmt.Sprintf("%q: [%s]", name, strings.Join(entries, ",")))
	}
	sort.Strings(parts)
	return `{"maps": {` + strings.Join(parts, ",") + `}}`
}

// xdpFilterRules are the rule sets xdp-filter's objects run with; each
// object gets those whose maps it has (plus the empty one). The bundled
// capture's IPv4 sources are 10.0.0.1-16 and 192.168.1.1-8 towards
// 10.0.0.254, TCP to 80/443/22/8080 from 30000-30999, UDP to
// 53/5353/9999 from 40000-40999, ARP 10.0.0.1 asking for 10.0.0.254,
// IPv6 UDP 2001:db8::1 to ::2, all from 02:00:00:00:00:01 to ...:02.
var xdpFilterRules = []ruleSet{
	{"no rules", `{"maps": {}}`},
	{"tcp dst 80", doc(map[string][]string{"filter_ports": {rule(portKey(80), flagDst|flagTCP)}})},
	{"udp dst 53, tcp+udp dst 443, udp src 40001", doc(map[string][]string{"filter_ports": {
		rule(portKey(53), flagDst|flagUDP), rule(portKey(443), flagDst|flagTCP|flagUDP), rule(portKey(40001), flagSrc|flagUDP)}})},
	{"port 22 without a protocol (no match)", doc(map[string][]string{"filter_ports": {rule(portKey(22), flagDst)}})},
	{"ipv4 src 10.0.0.3 and 192.168.1.5", doc(map[string][]string{"filter_ipv4": {
		rule(ipv4Key("10.0.0.3"), flagSrc), rule(ipv4Key("192.168.1.5"), flagSrc|flagDst)}})},
	{"ipv4 dst 10.0.0.254 (every IPv4 and ARP frame)", doc(map[string][]string{"filter_ipv4": {rule(ipv4Key("10.0.0.254"), flagDst)}})},
	{"ipv6 src 2001:db8::1", doc(map[string][]string{"filter_ipv6": {rule(ipv6Key("2001:db8::1"), flagSrc)}})},
	{"ipv6 dst 2001:db8::1 (no match)", doc(map[string][]string{"filter_ipv6": {rule(ipv6Key("2001:db8::1"), flagDst)}})},
	{"ether src 02:00:00:00:00:01", doc(map[string][]string{"filter_ethernet": {rule(macKey("02:00:00:00:00:01"), flagSrc)}})},
	{"ether dst 02:00:00:00:00:01 (no match)", doc(map[string][]string{"filter_ethernet": {rule(macKey("02:00:00:00:00:01"), flagDst)}})},
	{"everything at once", doc(map[string][]string{
		"filter_ports":    {rule(portKey(8080), flagDst|flagTCP), rule(portKey(9999), flagDst|flagUDP)},
		"filter_ipv4":     {rule(ipv4Key("10.0.0.7"), flagSrc)},
		"filter_ipv6":     {rule(ipv6Key("2001:db8::2"), flagDst)},
		"filter_ethernet": {rule(macKey("02:00:00:00:00:03"), flagSrc)},
	})},
}

// dispatcherRules configure libxdp's dispatcher as xdp_multiprog__attach
// does (struct xdp_dispatcher_config in .rodata): how many programs run
// and which of their return codes chain to the next. Without freplace
// the program slots keep their stubs, which return
// XDP_DISPATCHER_RETVAL (31).
var dispatcherRules = []ruleSet{
	{"no programs", `{"maps": {}}`},
	{"one program, chained on 31", `{"maps": {".rodata": [{"value": {"conf": {"magic": 236, "dispatcher_version": 2, "num_progs_enabled": 1, "chain_call_actions": [2147483652, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}}]}}`},
	{"one program, not chained", `{"maps": {".rodata": [{"value": {"conf": {"num_progs_enabled": 1, "chain_call_actions": [4, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}}]}}`},
	{"ten programs, all chained", `{"maps": {".rodata": [{"value": {"conf": {"num_progs_enabled": 10, "chain_call_actions": [2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648]}}}]}}`},
	{"three chained, the fourth not", `{"maps": {".rodata": [{"value": {"conf": {"num_progs_enabled": 4, "chain_call_actions": [2147483648, 2147483648, 2147483648, 0, 0, 0, 0, 0, 0, 0]}}}]}}`},
	{"compat test slot", `{"maps": {".rodata": [{"value": {"conf": {"num_progs_enabled": 11, "chain_call_actions": [2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648, 2147483648]}}}]}}`},
}

// xdpdumpRules configure xdpdump's trace_cfg (.data): the interface to
// capture (BPF_PROG_TEST_RUN's packets arrive on the loopback device,
// ifindex 1) and the snap length.
var xdpdumpRules = []ruleSet{
	{"another interface", `{"maps": {".data": [{"value": {"trace_cfg": {"capture_if_ifindex": 2, "capture_snaplen": 65535}}}]}}`},
	{"loopback, snaplen 64", `{"maps": {".data": [{"value": {"trace_cfg": {"capture_if_ifindex": 1, "capture_snaplen": 64, "capture_prog_index": 3}}}]}}`},
	{"loopback, whole packets", `{"maps": {".data": [{"value": {"trace_cfg": {"capture_if_ifindex": 1, "capture_snaplen": 65535}}}]}}`},
}

// rulesFor returns the rule sets an object runs with: those whose maps
// it has.
func rulesFor(name string, spec *ebpf.CollectionSpec) []ruleSet {
	switch {
	case strings.HasPrefix(name, "xdp-dispatcher"):
		return dispatcherRules
	case strings.HasPrefix(name, "xdpdump"):
		return xdpdumpRules
	case strings.HasPrefix(name, "xsk_def_xdp_prog"):
		return []ruleSet{{"empty xsks_map", `{"maps": {}}`}}
	}
	var out []ruleSet
	for _, rs := range xdpFilterRules {
		n, err := mapjson.ParseNode([]byte(rs.doc))
		if err != nil {
			panic(err)
		}
		dumps, _, _ := mapjson.Dumps(n)
		ok := true
		for _, d := range dumps {
			if spec.Maps[d.Name] == nil {
				ok = false
			}
		}
		if ok {
			out = append(out, rs)
		}
	}
	return out
}

// ruleElems encodes a rule set into the elements to store, with the
// object's BTF.
func ruleElems(tb testing.TB, spec *ebpf.CollectionSpec, rs ruleSet, cpus int) map[string][]mapjson.Elem {
	tb.Helper()
	n, err := mapjson.ParseNode([]byte(rs.doc))
	if err != nil {
		tb.Fatal(err)
	}
	dumps, _, err := mapjson.Dumps(n)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]mapjson.Elem{}
	for _, d := range dumps {
		ms := spec.Maps[d.Name]
		desc := &mapjson.Map{Name: ms.Name, Type: ms.Type, KeySize: ms.KeySize, ValueSize: ms.ValueSize,
			MaxEntries: ms.MaxEntries, Key: ms.Key, Value: ms.Value, CPUs: cpus}
		var initial []byte
		if len(ms.Contents) == 1 {
			initial, _ = ms.Contents[0].Value.([]byte)
		}
		for i, e := range d.Entries {
			el, err := desc.ParseEntry(e, i+1, func([]byte) []byte { return initial })
			if err != nil {
				tb.Fatal(err)
			}
			out[d.Name] = append(out[d.Name], el)
		}
	}
	return out
}

// xdpToolsRow is a line of the per-object table the test logs.
type xdpToolsRow struct {
	object, rules          string
	packets, diffs, events int
	verdicts               map[uint32]int
	skipped                string // why the kernel could not run it
}

// TestXDPTools_kernel runs the BPF objects xdp-tools ships over the
// bundled capture, with their maps set as xdp-filter (or libxdp, or
// xdpdump) sets them, in waggle and in the kernel (BPF_PROG_TEST_RUN,
// frame by frame), and requires the same verdict and output packet for
// every frame, the same map contents afterwards (per-CPU values summed)
// and the same perf event samples. Objects the kernel refuses (xdpdump's
// fentry/fexit programs, which need an attach target) are skipped with
// the kernel's reason. The table of results is logged (go test -v).
func TestXDPTools_kernel(t *testing.T) {
	objects := ktest.XDPToolsObjects(t)
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	if testing.Short() {
		frames = frames[:200] // -short (with -race in CI): a fifth of the capture, two rule sets
	}
	var table []xdpToolsRow
	for _, path := range objects {
		name := strings.TrimSuffix(filepath.Base(path), ".o")
		t.Run(name, func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(path)
			if err != nil {
				t.Fatal(err)
			}
			var progs []string
			for pn, ps := range spec.Programs {
				if ps.Type == ebpf.XDP {
					progs = append(progs, pn)
				}
			}
			sort.Strings(progs)
			if len(progs) == 0 {
				// Probe the kernel with the object as it is, for the reason.
				if err := kernel.SpecSupported(spec); err != nil {
					t.Skipf("no XDP program; the kernel lacks what the object needs: %v", firstLine(err))
				}
				kc, err := ebpf.NewCollection(spec)
				if err == nil {
					kc.Close()
					t.Fatalf("no XDP program, yet the kernel loads the object")
				}
				t.Skipf("no XDP program; the kernel refuses the object: %v", firstLine(err))
			}
			seen := map[uint32]bool{}
			rules := rulesFor(name, spec)
			if testing.Short() {
				rules = rules[:min(2, len(rules))] // -short: no rules and the first set
			}
			for _, rs := range rules {
				for _, prog := range progs {
					row := compareXDPTool(t, spec, prog, rs, frames, cpus)
					row.object = name
					if len(progs) > 1 {
						row.rules = prog + ": " + rs.name
					}
					table = append(table, row)
					for v := range row.verdicts {
						seen[v] = true
					}
				}
			}
			// xdp-filter's rule sets must make it both drop and pass, or
			// the rules did not reach the maps.
			if strings.HasPrefix(name, "xdpfilt_") && !testing.Short() && !t.Skipped() && (!seen[1] || !seen[2]) {
				t.Errorf("verdicts over all rule sets %v: want both XDP_DROP and XDP_PASS", seen)
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-52s %7s %-26s %6s %5s\n", "object", "rules", "packets", "verdicts", "events", "diffs")
	for _, r := range table {
		if r.skipped != "" {
			fmt.Fprintf(&b, "%-22s %-52s skipped: %s\n", r.object, r.rules, r.skipped)
			continue
		}
		var vs []string
		for _, v := range sortedKeys(r.verdicts) {
			vs = append(vs, fmt.Sprintf("%s=%d", verdictName(v), r.verdicts[v]))
		}
		fmt.Fprintf(&b, "%-22s %-52s %7d %-26s %6d %5d\n", r.object, r.rules, r.packets, strings.Join(vs, " "), r.events, r.diffs)
	}
	t.Logf("xdp-tools objects over %d frames:\n%s", len(frames), b.String())
}

func sortedKeys(m map[uint32]int) []uint32 {
	var ks []uint32
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func verdictName(v uint32) string {
	switch v {
	case 0:
		return "ABORTED"
	case 1:
		return "DROP"
	case 2:
		return "PASS"
	case 3:
		return "TX"
	case 4:
		return "REDIRECT"
	}
	return fmt.Sprint(v)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// compareXDPTool runs one program of an object with one rule set in both
// engines.
func compareXDPTool(t *testing.T, spec *ebpf.CollectionSpec, prog string, rs ruleSet, frames [][]byte, cpus int) xdpToolsRow {
	row := xdpToolsRow{rules: rs.name, packets: len(frames), verdicts: map[uint32]int{}}
	t.Run(strings.ReplaceAll(prog+"/"+rs.name, " ", "_"), func(t *testing.T) {
		elems := ruleElems(t, spec, rs, cpus)
		// Global data is set in the spec, before loading, as libbpf sets
		// .rodata before the kernel freezes it; other maps afterwards.
		// (cilium/ebpf loads global data from the spec's variables.)
		kspec := spec.Copy()
		for name, els := range elems {
			if ms := kspec.Maps[name]; ms.Type == ebpf.Array && ms.MaxEntries == 1 && len(ms.Contents) == 1 {
				data := els[0].Value
				ms.Contents[0].Value = data
				for _, v := range kspec.Variables {
					if v.SectionName == name {
						v.Value = bytes.Clone(data[v.Offset : v.Offset+v.Size()])
					}
				}
				delete(elems, name)
			}
		}
		// xdp-filter pins its maps by name; here each run gets its own.
		for _, ms := range kspec.Maps {
			ms.Pinning = ebpf.PinNone
		}
		if err := kernel.SpecSupported(kspec); err != nil {
			row.skipped = "the kernel lacks what it needs: " + firstLine(err)
			t.Skip(row.skipped)
		}
		kc, err := ebpf.NewCollectionWithOptions(kspec, ebpf.CollectionOptions{})
		if err != nil {
			t.Fatalf("kernel: %v", err)
		}
		defer kc.Close()
		coll, err := waggle.NewCollection(kspec.Copy(), &waggle.CollectionOptions{CPUs: cpus})
		if err != nil {
			t.Fatalf("waggle: %v", err)
		}
		defer coll.Close()
		for name, els := range elems {
			km, wm := kc.Maps[name], coll.Maps[name]
			for _, el := range els {
				if err := wm.Put(el.Key, el.Value); err != nil {
					t.Fatal(err)
				}
				var kv any = el.Value
				if mapdump.PerCPU(km.Type()) {
					stride := (int(km.ValueSize()) + 7) &^ 7
					var per [][]byte
					for c := range cpus {
						per = append(per, el.Value[c*stride:c*stride+int(km.ValueSize())])
					}
					kv = per
				}
				if err := km.Put(el.Key, kv); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Perf event arrays: a reader on each side.
		var wperf *maps.PerfReader
		var kperf *perf.Reader
		for name, m := range coll.Maps {
			if m.Type() != ebpf.PerfEventArray {
				continue
			}
			if wperf, err = maps.NewPerfReader(m.Underlying(), 1<<20); err != nil {
				t.Fatal(err)
			}
			defer wperf.Close()
			if kperf, err = perf.NewReader(kc.Maps[name], 1<<20); err != nil {
				t.Skipf("perf reader in the kernel: %v", err)
			}
			defer kperf.Close()
		}
		wp, kp := coll.Programs[prog], kc.Programs[prog]
		var wsamples, ksamples [][]byte
		for i, frame := range frames {
			wopts := &waggle.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
			wret, werr := wp.Run(wopts)
			kopts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
			kret, kerr := kp.Run(kopts)
			if (werr != nil) != (kerr != nil) || wret != kret || !bytes.Equal(wopts.DataOut, kopts.DataOut) {
				if row.diffs++; row.diffs <= 3 {
					t.Errorf("frame %d: waggle %d (%v) and %d bytes, kernel %d (%v) and %d bytes; first difference at byte %d",
						i, wret, werr, len(wopts.DataOut), kret, kerr, len(kopts.DataOut), firstDiff(wopts.DataOut, kopts.DataOut))
				}
			}
			row.verdicts[kret]++
			if wperf != nil {
				wperf.SetDeadline(time.Now())
				drain(wperf.Read, func(r maps.PerfRecord) []byte { return r.RawSample }, &wsamples)
				kperf.SetDeadline(time.Now())
				drain(kperf.Read, func(r perf.Record) []byte { return r.RawSample }, &ksamples)
			}
		}
		if row.diffs > 0 {
			t.Fatalf("%d of %d frames differ", row.diffs, len(frames))
		}
		if len(wsamples) != len(ksamples) {
			t.Fatalf("perf samples: waggle %d, kernel %d", len(wsamples), len(ksamples))
		}
		for i := range wsamples {
			if !bytes.Equal(wsamples[i], ksamples[i]) {
				t.Fatalf("perf sample %d: waggle % x\nkernel % x", i, wsamples[i], ksamples[i])
			}
		}
		row.events = len(wsamples)
		compareMaps(t, coll, kc)
	})
	return row
}
