package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

const (
	traffic   = "../../examples/traffic/traffic.pcap"
	blocklist = "../../examples/blocklist/blocklist.o"
)

// frames decodes the bundled capture, the oracle the expected counts of
// these tests come from.
func frames(tb testing.TB) []gopacket.Packet {
	tb.Helper()
	f, err := os.Open(traffic)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out []gopacket.Packet
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default))
	}
}

// count counts the IPv4 frames for which keep returns true.
func count(pkts []gopacket.Packet, keep func(ip *layers.IPv4) bool) int {
	n := 0
	for _, p := range pkts {
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && keep(ip) {
			n++
		}
	}
	return n
}

// runJSON runs the CLI and decodes its --json summary.
func runJSON(t *testing.T, args ...string) (map[string]json.RawMessage, string) {
	t.Helper()
	code, out, errOut := runCLI(t, "", append(args, "--json")...)
	if code != 0 {
		t.Fatalf("%v: status %d: %s", args, code, errOut)
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	for k, v := range res { // compact, for matching
		var b bytes.Buffer
		json.Compact(&b, v)
		res[k] = b.Bytes()
	}
	return res, out
}

// entry is an element of a dump, decoded loosely.
type entry struct {
	Key       []string                   `json:"key"`
	Value     []string                   `json:"value"`
	Values    []struct{ Value []string } `json:"values"`
	Formatted map[string]json.RawMessage `json:"formatted"`
}

func dumpOf(t *testing.T, res map[string]json.RawMessage) map[string][]entry {
	t.Helper()
	var maps map[string][]entry
	if err := json.Unmarshal(res["maps"], &maps); err != nil {
		t.Fatalf("maps: %v in %s", err, res["maps"])
	}
	return maps
}

func hexU64(t *testing.T, b []string) uint64 {
	t.Helper()
	var raw []byte
	for _, s := range b {
		v, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, v...)
	}
	return binary.LittleEndian.Uint64(append(raw, make([]byte, 8)...))
}

// TestRun_mapInit: the blocklist example drops what its map-init file
// lists (the count computed from the capture), the dump shows the hits
// per prefix and the per-CPU stats by enumerator, and a dump fed back
// restores the maps.
func TestRun_mapInit(t *testing.T) {
	pkts := frames(t)
	_, n8, _ := net.ParseCIDR("10.0.0.8/30")
	_, n192, _ := net.ParseCIDR("192.168.1.0/24")
	want := map[string]int{
		"10.0.0.3/32":    count(pkts, func(ip *layers.IPv4) bool { return ip.SrcIP.Equal(net.IPv4(10, 0, 0, 3)) }),
		"10.0.0.8/30":    count(pkts, func(ip *layers.IPv4) bool { return n8.Contains(ip.SrcIP) }),
		"192.168.1.0/24": count(pkts, func(ip *layers.IPv4) bool { return n192.Contains(ip.SrcIP) }),
	}
	drops := want["10.0.0.3/32"] + want["10.0.0.8/30"] + want["192.168.1.0/24"]
	if drops == 0 || drops == len(pkts) {
		t.Fatalf("the capture gives %d drops: no test", drops)
	}
	// One worker: every packet runs on CPU 0.
	res, _ := runJSON(t, "run", blocklist, "--pcap", traffic, "--map-init", "../../examples/blocklist/blocklist.json", "--map-dump", "--cpus", "2", "--workers", "1")
	var verdicts map[string]int
	json.Unmarshal(res["verdicts"], &verdicts)
	if verdicts["XDP_DROP"] != drops || verdicts["XDP_PASS"] != len(pkts)-drops {
		t.Fatalf("verdicts %v, want %d drops of %d", verdicts, drops, len(pkts))
	}
	maps := dumpOf(t, res)
	if len(maps["blocklist"]) != 3 || len(maps["stats"]) != 3 {
		t.Fatalf("dump %s", res["maps"])
	}
	for _, e := range maps["blocklist"] {
		var key struct {
			Prefixlen int
			Addr      []int
		}
		if err := json.Unmarshal(e.Formatted["key"], &key); err != nil || len(key.Addr) != 4 {
			t.Fatalf("key %s: %v", e.Formatted["key"], err)
		}
		name := fmt.Sprintf("%d.%d.%d.%d/%d", key.Addr[0], key.Addr[1], key.Addr[2], key.Addr[3], key.Prefixlen)
		if got := hexU64(t, e.Value); int(got) != want[name] {
			t.Errorf("prefix %s: %d hits, want %d", name, got, want[name])
		}
		if string(e.Formatted["value"]) != fmt.Sprint(want[name]) {
			t.Errorf("prefix %s: formatted %s", name, e.Formatted["value"])
		}
	}
	if !strings.Contains(string(res["maps"]), fmt.Sprintf(`"formatted":{"key":"STAT_DROP","values":[{"cpu":0,"value":%d},{"cpu":1,"value":0}]}`, drops)) {
		t.Errorf("stats: %s", res["maps"])
	}

	// The text dump feeds back: the maps start where the run left them,
	// so a run on one non-IPv4 frame adds one STAT_NOT_IPV4 and nothing
	// else.
	dir := t.TempDir()
	code, text, errOut := runCLI(t, "", "run", blocklist, "--pcap", traffic, "--map-init", "../../examples/blocklist/blocklist.json", "--map-dump", "--cpus", "2", "--workers", "1")
	if code != 0 {
		t.Fatal(errOut)
	}
	saved := filepath.Join(dir, "dump.txt")
	os.WriteFile(saved, []byte(text), 0o644)
	arp := filepath.Join(dir, "arp.bin")
	os.WriteFile(arp, pkts[7].Data(), 0o644) // frame 7 is ARP
	res2, _ := runJSON(t, "run", blocklist, "--data-in", arp, "--map-init", saved, "--map-dump", "--cpus", "2")
	again := dumpOf(t, res2)
	for i, e := range again["blocklist"] {
		if !slicesEqual(e.Value, maps["blocklist"][i].Value) {
			t.Errorf("blocklist entry %d after feeding the dump back: %v, want %v", i, e.Value, maps["blocklist"][i].Value)
		}
	}
	if got, before := hexU64(t, again["stats"][2].Values[0].Value), hexU64(t, maps["stats"][2].Values[0].Value); got != before+1 {
		t.Errorf("STAT_NOT_IPV4 %d after one ARP frame, was %d", got, before)
	}

	// bpftool's dump of one map, hex only, as NAME=FILE.
	one := filepath.Join(dir, "blocklist.json")
	os.WriteFile(one, []byte(`[{"key": ["0x18","0x00","0x00","0x00","0xc0","0xa8","0x01","0x00"], "value": ["0x00","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]}]`), 0o644)
	res3, _ := runJSON(t, "run", blocklist, "--pcap", traffic, "--map-init", "blocklist="+one)
	json.Unmarshal(res3["verdicts"], &verdicts)
	if verdicts["XDP_DROP"] != want["192.168.1.0/24"] {
		t.Errorf("NAME=FILE: verdicts %v, want %d drops", verdicts, want["192.168.1.0/24"])
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestRun_mapInitExamples: the other map-init files next to the examples
// do what they say: the tail-call reroute sends UDP to the ICMP program
// (dropped), the loop's marker is changed so no payload carries it.
func TestRun_mapInitExamples(t *testing.T) {
	pkts := frames(t)
	icmp := count(pkts, func(ip *layers.IPv4) bool { return ip.Protocol == layers.IPProtocolICMPv4 })
	udp := count(pkts, func(ip *layers.IPv4) bool { return ip.Protocol == layers.IPProtocolUDP })
	for _, tc := range []struct {
		args  []string
		drops int
	}{
		{[]string{"run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", traffic}, icmp},
		{[]string{"run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", traffic, "--map-init", "../../examples/tailcall/reroute.json"}, icmp + udp},
		{[]string{"run", "../../examples/loop/loop.o", "--pcap", traffic, "--map-init", "../../examples/loop/marker.json"}, 0},
	} {
		res, _ := runJSON(t, tc.args...)
		var verdicts map[string]int
		json.Unmarshal(res["verdicts"], &verdicts)
		if verdicts["XDP_DROP"] != tc.drops {
			t.Errorf("%v: verdicts %v, want %d drops", tc.args, verdicts, tc.drops)
		}
	}
	// The loop example's scanned count shows in its .bss.
	res, _ := runJSON(t, "run", "../../examples/loop/loop.o", "--pcap", traffic, "--map-dump", ".bss")
	if !regexp.MustCompile(`"formatted":\{"value":\{"\.bss":\[\{"scanned":[1-9][0-9]*\}\]\}\}`).Match(res["maps"]) {
		t.Errorf(".bss dump %s", res["maps"])
	}
	// Typed per-CPU values: one value for every CPU.
	dir := t.TempDir()
	init := filepath.Join(dir, "init.json")
	os.WriteFile(init, []byte(`{"maps": {"sources": [{"key": [10, 0, 0, 1], "value": {"packets": 1000000}}]}}`), 0o644)
	res, _ = runJSON(t, "run", "../../examples/counter/counter.o", "--pcap", traffic, "--map-init", init, "--map-dump", "sources", "--cpus", "2", "--workers", "1")
	n := count(pkts, func(ip *layers.IPv4) bool { return ip.SrcIP.Equal(net.IPv4(10, 0, 0, 1)) })
	want := fmt.Sprintf(`"formatted":{"key":[10,0,0,1],"values":[{"cpu":0,"value":{"packets":%d,`, 1000000+n)
	if !strings.Contains(string(res["maps"]), want) || !strings.Contains(string(res["maps"]), `{"cpu":1,"value":{"packets":1000000,"bytes":0}}`) {
		t.Errorf("sources: want %s and CPU 1 at 1000000 in %s", want, res["maps"])
	}
}

// TestRun_events: every IPv4 frame of the capture gives one ring-buffer
// record, printed as it arrives, with the frame's addresses.
func TestRun_events(t *testing.T) {
	pkts := frames(t)
	code, out, errOut := runCLI(t, "", "run", "../../examples/events/events.o", "--pcap", traffic, "--events", "--json")
	if code != 0 {
		t.Fatal(errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var events []event
	for dec.More() {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Map == "" {
			break // the summary
		}
		events = append(events, ev)
	}
	want := count(pkts, func(*layers.IPv4) bool { return true })
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	for _, ev := range events {
		data, err := hex.DecodeString(ev.Data)
		if err != nil || len(data) != 16 || ev.Type != "ringbuf" || ev.Map != "events" {
			t.Fatalf("event %+v", ev)
		}
		ip := pkts[ev.Packet-1].Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !net.IP(data[0:4]).Equal(ip.SrcIP) || !net.IP(data[4:8]).Equal(ip.DstIP) || data[12] != byte(ip.Protocol) {
			t.Fatalf("packet %d: event % x, frame %v > %v", ev.Packet, data, ip.SrcIP, ip.DstIP)
		}
	}
	// One run on a packet: its record, then the result with the maps.
	in := filepath.Join(t.TempDir(), "frame.bin")
	os.WriteFile(in, pkts[0].Data(), 0o644)
	code, out, errOut = runCLI(t, "", "run", "../../examples/events/events.o", "--data-in", in, "--events", "--map-dump", "--json")
	lines := strings.SplitN(out, "\n", 2)
	var ev event
	var res struct {
		Verdict string
		Maps    map[string][]entry
	}
	if code != 0 || json.Unmarshal([]byte(lines[0]), &ev) != nil || ev.Packet != 1 || !strings.HasPrefix(ev.Data, "0a000001") ||
		json.Unmarshal([]byte(lines[1]), &res) != nil || res.Verdict != "XDP_PASS" || len(res.Maps["dropped"]) != 1 {
		t.Errorf("--data-in --events: status %d, %s\n%s", code, errOut, out)
	}

	// Text: one line per record, before the summary.
	code, out, _ = runCLI(t, "", "run", "../../examples/events/events.o", "--pcap", traffic, "--events", "--packets", "2")
	lines = strings.Split(out, "\n")
	re := regexp.MustCompile(`^packet [12]: events \(ringbuf\): 16 bytes: [0-9a-f]{8} 0a0000fe [0-9a-f]{8} [0-9a-f]{8}$`)
	if code != 0 || len(lines) < 3 || !re.MatchString(lines[0]) || !re.MatchString(lines[1]) || !strings.HasPrefix(lines[2], "xdp_events (XDP): 2 packets") {
		t.Errorf("text events:\n%s", out)
	}
}

// TestRun_capture: pcapng runs as pcap does; a capture cut mid-record
// gives the results of the packets before, then an error naming the file
// and the packet; a record claiming 4 GiB is an error, not an allocation.
func TestRun_capture(t *testing.T) {
	orig, err := os.ReadFile(traffic)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The same frames as pcapng.
	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range frames(t) {
		ci := p.Metadata().CaptureInfo
		ci.CaptureLength, ci.Length = len(p.Data()), len(p.Data())
		w.WritePacket(ci, p.Data())
	}
	w.Flush()
	ngFile := filepath.Join(dir, "traffic.pcapng")
	os.WriteFile(ngFile, ng.Bytes(), 0o644)
	args := []string{"run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap"}
	a, _ := runJSON(t, append(args, traffic)...)
	b, _ := runJSON(t, append(args, ngFile)...)
	if string(a["verdicts"]) != string(b["verdicts"]) || string(a["packets"]) != "1000" {
		t.Errorf("pcap %s, pcapng %s", a["verdicts"], b["verdicts"])
	}

	// Cut in the middle of packet 501.
	off := 24
	for range 500 {
		off += 16 + int(binary.LittleEndian.Uint32(orig[off+8:]))
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, orig[:off+16+10], 0o644)
	code, out, errOut := runCLI(t, "", append(args, cut)...)
	if code != 1 || !strings.Contains(out, "xdp_dispatch (XDP): 500 packets") ||
		!strings.Contains(errOut, cut+": packet 501 (byte "+fmt.Sprint(off)+"): truncated: the record claims") {
		t.Errorf("cut capture: status %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", append(args, cut, "--json")...)
	var sum packetSummary
	if err := json.Unmarshal([]byte(out), &sum); code != 1 || err != nil || sum.Packets != 500 || !strings.Contains(sum.InputError, "packet 501") {
		t.Errorf("cut capture --json: status %d, %+v (%v)", code, sum, err)
	}

	// A record header claiming 4 GiB.
	huge := filepath.Join(dir, "huge.pcap")
	rec := binary.LittleEndian.AppendUint64(nil, 0)
	rec = binary.LittleEndian.AppendUint32(rec, 0xffffffff)
	rec = binary.LittleEndian.AppendUint32(rec, 0xffffffff)
	os.WriteFile(huge, append(append(bytes.Clone(orig[:24]), rec...), make([]byte, 100)...), 0o644)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, out, errOut = runCLI(t, "", append(args, huge)...)
	runtime.ReadMemStats(&after)
	if code != 1 || !strings.Contains(out, "0 packets") || !strings.Contains(errOut, "packet 1 (byte 24): the record claims 4294967295 captured bytes") {
		t.Errorf("4 GiB record: status %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("reading a 124-byte capture allocated %d bytes", grew)
	}
}

// TestMapFlags_errors: bad map files, names and flag combinations give an
// error naming the map, the entry and the field, and status 1.
func TestMapFlags_errors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	counter := "../../examples/counter/counter.o"
	events := "../../examples/events/events.o"
	dispatch := "../../examples/tailcall/dispatch.o"
	run := func(obj string, extra ...string) []string {
		return append([]string{"run", obj, "--pcap", traffic}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", run(blocklist, "--map-init", filepath.Join(dir, "none.json")), "--map-init: open"},
		{"malformed JSON", run(blocklist, "--map-init", write("bad.json", `{"maps": {"blocklist": [`)), "--map-init " + dir + "/bad.json: not JSON: line 1, column 25: unexpected EOF"},
		{"JSON error line", run(blocklist, "--map-init", write("line.json", "xdp_blocklist (XDP): 1 packets\n{\"maps\": {\n\"blocklist\": [1 2]}}")), "line.json: not JSON: line 3, column 17: invalid character '2'"},
		{"no maps object", run(blocklist, "--map-init", write("nomaps.json", `{"blocklist": []}`)), `no "maps" object`},
		{"unknown map", run(blocklist, "--map-init", write("unknown.json", `{"maps": {"blocklst": []}}`)), "map blocklst: no such map; the object has blocklist, stats"},
		{"wrong key size", run(blocklist, "--map-init", write("size.json", `{"maps": {"blocklist": [{"key": ["0x01", "0x02"], "value": 0}]}}`)), "map blocklist, entry 1: key: 2 bytes, want 8"},
		{"out of range", run(blocklist, "--map-init", write("range.json", `{"maps": {"blocklist": [{"key": {"prefixlen": 24, "addr": [10, 0, 0, 300]}, "value": 0}]}}`)), "map blocklist, entry 1: key.addr[3]: 300 is out of range for __u8 (0 to 255)"},
		{"unknown field", run(blocklist, "--map-init", write("field.json", `{"maps": {"blocklist": [{"key": {"prefix": 24}, "value": 0}]}}`)), `map blocklist, entry 1: key: struct lpm_key has no field "prefix"`},
		{"unknown enumerator", run(blocklist, "--map-init", write("enum.json", `{"maps": {"stats": [{"key": "STAT_LOST", "value": 0}]}}`)), `map stats, entry 1: key: enum stat has no enumerator "STAT_LOST" (it has STAT_PASS, STAT_DROP, STAT_NOT_IPV4, STAT_MAX)`},
		{"array index past the end", run(blocklist, "--map-init", write("e2big.json", `{"maps": {"stats": [{"key": "STAT_MAX", "value": 0}]}}`)), "map stats, entry 1: map stats: update"},
		{"wrong cpu", run(counter, "--cpus", "2", "--map-init", write("cpu.json", `{"maps": {"sources": [{"key": [1, 2, 3, 4], "values": [{"cpu": 2, "value": {}}]}]}}`)), "map sources, entry 1: values[0]: cpu 2, but the map has values for 2 CPUs"},
		{"second entry", run(counter, "--map-init", write("second.json", `{"maps": {"sources": [{"key": [1, 2, 3, 4], "value": {}}, {"key": [1, 2, 3], "value": {}}]}}`)), "map sources, entry 2: key: 3 elements, want 4"},
		{"NAME=FILE not an array", run(blocklist, "--map-init", "blocklist="+write("obj.json", `{}`)), "want the array of entries bpftool map dump -j prints for map blocklist"},
		{"ring buffer init", run(events, "--map-init", write("rb.json", `{"maps": {"events": []}}`)), "map events: a ringbuf cannot be set"},
		{"unknown program", run(dispatch, "--program", "xdp_dispatch", "--map-init", write("prog.json", `{"maps": {"protocols": [{"key": 6, "value": "xdp_gre"}]}}`)), `map protocols, entry 1: value: no program "xdp_gre"; the object has xdp_dispatch, xdp_icmp, xdp_tcp, xdp_udp`},
		{"prog array bytes", run(dispatch, "--program", "xdp_dispatch", "--map-init", write("progb.json", `{"maps": {"protocols": [{"key": 6, "value": 3}]}}`)), "give one by name"},
		{"dump unknown map", run(blocklist, "--map-dump", "blocklst"), `--map-dump: no map "blocklst"; the object has blocklist, stats`},
		{"dump ring buffer", run(events, "--map-dump=events"), "--map-dump: map events is a ringbuf: it holds records, not elements (--events prints them)"},
		{"dump prog array", run(dispatch, "--program", "xdp_dispatch", "--map-dump", "protocols"), "map protocols is a prog_array"},
		{"events without rings", run(blocklist, "--events"), "--events: the object has no ring buffer or perf event array; its maps are blocklist, stats"},
		{"extra argument", run(blocklist, "stray"), "accepts 1 arg(s), received 2"},
		{"map flags on raw programs", []string{"run", "95 00 00 00 00 00 00 00", "--map-dump"}, "need an ELF object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("status %d, stderr %q\nwant status 1 and %q", code, errOut, tc.want)
			}
		})
	}
}

// TestRun_xdpFilter: xdp-filter's object from Debian's xdp-tools, with its
// port map set from the command line as `xdp-filter port 80 -p tcp` sets
// it (flags dst|tcp on every CPU, under htons(80)), drops the capture's
// TCP segments to port 80, and the dump shows each hit counted above
// COUNTER_SHIFT. The object is read where the package installed it.
func TestRun_xdpFilter(t *testing.T) {
	objs, _ := filepath.Glob("/usr/lib/*/bpf/xdpfilt_alw_tcp.o")
	if len(objs) == 0 {
		t.Skip("xdp-tools is not installed (apt-get install xdp-tools)")
	}
	pkts := frames(t)
	want := 0
	for _, p := range pkts {
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && tcp.DstPort == 80 {
			want++
		}
	}
	rules := filepath.Join(t.TempDir(), "rules.json")
	os.WriteFile(rules, []byte(`{"maps": {"filter_ports": [{"key": ["0x00", "0x50", "0x00", "0x00"], "value": 6}]}}`), 0o644)
	res, _ := runJSON(t, "run", objs[0], "--pcap", traffic, "--map-init", rules, "--map-dump", "filter_ports", "--cpus", "1")
	var verdicts map[string]int
	json.Unmarshal(res["verdicts"], &verdicts)
	if want == 0 || verdicts["XDP_DROP"] != want || verdicts["XDP_PASS"] != len(pkts)-want {
		t.Fatalf("verdicts %v, want %d drops", verdicts, want)
	}
	// Port 80's element: flags 6 plus one 1<<6 per hit.
	hit := fmt.Sprintf(`"formatted":{"key":20480,"values":[{"cpu":0,"value":%d}]}`, 6+want<<6)
	if !strings.Contains(string(res["maps"]), hit) {
		t.Errorf("want %s in the dump", hit)
	}
}
