package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/apps/firewall/trafficgen"
	"github.com/waggle-bpf/waggle/internal/capture"
)

// reloadBase is the configuration the reload test starts from: the
// attack capture's legitimate packets stay under its limits.
const reloadBase = `
options: {drop_fragments: true, drop_malformed: true}
limits:
  prefix_v4: 24
  prefix_v6: 64
  pps: {rate: 2000, burst: 200}
  syn: {rate: 50, burst: 10}
  udp_amplification:
    dns: {rate: 200}
    ntp: {rate: 20}
    ssdp: {rate: 20}
    memcached: {rate: 1}
  attack_pps: 100000
`

// attackCapture reads testdata/attacks.pcap and its labels.
func attackCapture(tb testing.TB) ([]Packet, []trafficgen.Label) {
	tb.Helper()
	f, err := os.Open("testdata/attacks.pcap")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	rd, err := capture.NewReader(f, st.Size())
	if err != nil {
		tb.Fatal(err)
	}
	var ps []Packet
	for {
		p, err := rd.Next()
		if err != nil {
			if strings.Contains(err.Error(), "EOF") {
				break
			}
			tb.Fatal(err)
		}
		ps = append(ps, Packet{Data: append([]byte(nil), p.Data...), Time: p.Timestamp})
	}
	lf, err := os.Open("testdata/attacks.labels.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer lf.Close()
	labels, err := trafficgen.ReadLabels(lf, len(ps)+1)
	if err != nil {
		tb.Fatal(err)
	}
	if len(labels) != len(ps) {
		tb.Fatalf("%d labels for %d packets", len(labels), len(ps))
	}
	return ps, labels
}

// packetSource is a frame's IP source address, if it has one.
func packetSource(b []byte) (netip.Addr, bool) {
	if len(b) < 14 {
		return netip.Addr{}, false
	}
	et, l3 := uint16(b[12])<<8|uint16(b[13]), 14
	if (et == 0x8100 || et == 0x88a8) && len(b) >= 18 {
		et, l3 = uint16(b[16])<<8|uint16(b[17]), 18
	}
	switch {
	case et == 0x0800 && len(b) >= l3+20:
		return netip.AddrFrom4([4]byte(b[l3+12 : l3+16])), true
	case et == 0x86dd && len(b) >= l3+40:
		return netip.AddrFrom16([16]byte(b[l3+8 : l3+24])), true
	}
	return netip.Addr{}, false
}

// TestReplayer_reloadLosesNoLegitimatePacket replays the attack capture
// in a loop while another goroutine reloads changed configurations in
// place, over and over: the legitimate sources' allow prefixes widened,
// narrowed and given to another rule while every other address is
// denied; deny lists of prefixes no legitimate source is in, put in and
// taken out; limits the legitimate traffic stays under.
// No legitimate packet of any loop is dropped.
func TestReplayer_reloadLosesNoLegitimatePacket(t *testing.T) {
	ps, labels := attackCapture(t)
	legit := map[netip.Addr]bool{}
	nLegit := 0
	for i, l := range labels {
		if l.Class == trafficgen.Legit {
			nLegit++
			if a, ok := packetSource(ps[i].Data); ok {
				legit[a] = true
			}
		}
	}
	if nLegit == 0 || len(legit) == 0 {
		t.Fatal("the capture has no legitimate packets")
	}
	// deny returns a rule of n /24s and n /48s, numbered from first, none
	// holding a legitimate source.
	deny := func(name string, first, n int) string {
		var cidrs []string
		for i := first; len(cidrs) < 2*n; i++ {
			p4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i/65536%200), byte(i / 256), byte(i), 0}), 24)
			p6 := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i%65536))
			for _, p := range []netip.Prefix{p4, p6} {
				ok := true
				for a := range legit {
					if p.Contains(a) {
						ok = false
						break
					}
				}
				if ok {
					cidrs = append(cidrs, `"`+p.String()+`"`)
				}
			}
		}
		return fmt.Sprintf("  - {name: %s, action: deny, cidrs: [%s]}\n", name, strings.Join(cidrs, ", "))
	}
	// allow lists the legitimate sources as /32s and /128s, or as their
	// /24s and /64s; everything else is denied, so a packet of a
	// legitimate source that met neither the old allow prefix nor the new
	// one would be dropped.
	allow := func(name string, id int, wide bool) string {
		var cidrs []string
		for a := range legit {
			bits := a.BitLen()
			if wide {
				bits = map[bool]int{true: 24, false: 64}[a.Is4()]
			}
			cidrs = append(cidrs, `"`+netip.PrefixFrom(a, bits).Masked().String()+`"`)
		}
		return fmt.Sprintf("  - {name: %s, id: %d, action: allow, cidrs: [%s]}\n", name, id, strings.Join(cidrs, ", "))
	}
	const rest = "  - {name: rest, action: deny, cidrs: [0.0.0.0/0, \"::/0\"]}\n"
	configs := []*Compiled{
		mustCompile(t, reloadBase+"rules:\n"+allow("clients", 30, false)+rest),
		mustCompile(t, strings.Replace(reloadBase, "rate: 2000, burst: 200", "rate: 4000, burst: 400", 1)+
			"rules:\n"+allow("clients", 30, true)+rest+deny("blocked", 0, 300)),
		mustCompile(t, reloadBase+"rules:\n"+allow("clients-b", 31, false)+rest+deny("blocked", 150, 300)+deny("more", 5000, 50)),
	}

	r, err := NewReplayer(configs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	const loops = 5
	const chunk = 64
	span := ps[len(ps)-1].Time.Sub(ps[0].Time) + 2*time.Second
	var reloads atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reloadErr error // read after wg.Wait
	var failed atomic.Bool
	var added, changed, removed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			res, err := r.Reload(configs[i%len(configs)])
			if err != nil {
				reloadErr = err
				failed.Store(true)
				return
			}
			added += res.Added
			changed += res.Changed
			removed += res.Removed
			reloads.Add(1)
		}
	}()

	var lost []string
	verdicts := make([]Verdict, chunk)
	batch := make([]Packet, chunk)
	for loop := range loops {
		shift := time.Duration(loop) * span
		for start := 0; start < len(ps); start += chunk {
			n := min(chunk, len(ps)-start)
			for i := range n {
				batch[i] = Packet{Data: ps[start+i].Data, Time: ps[start+i].Time.Add(shift)}
			}
			before := reloads.Load()
			if err := r.Run(batch[:n], verdicts[:n]); err != nil {
				close(stop)
				wg.Wait()
				t.Fatal(err)
			}
			for i := range n {
				if labels[start+i].Class == trafficgen.Legit && verdicts[i].Action != XDPPass {
					lost = append(lost, fmt.Sprintf("loop %d, packet %d (%s): %s by %s", loop, start+i, labels[start+i].Kind,
						ActionName(verdicts[i].Action), r.Compiled().RuleName(verdicts[i].Rule)))
				}
			}
			// At least one reload between this chunk's start and the next's.
			for reloads.Load() == before && !failed.Load() {
				runtime.Gosched()
			}
		}
	}
	close(stop)
	wg.Wait()
	if reloadErr != nil {
		t.Fatal(reloadErr)
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d legitimate packets dropped, first: %s", len(lost), loops*nLegit, strings.Join(lost[:min(5, len(lost))], "; "))
	}
	chunks := loops * ((len(ps) + chunk - 1) / chunk)
	if n := reloads.Load(); n < int64(chunks) || added == 0 || changed == 0 || removed == 0 {
		t.Errorf("%d reloads (want at least %d), %d prefixes added, %d changed, %d removed", n, chunks, added, changed, removed)
	}
	counters, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, c := range counters {
		total += c.Packets
	}
	if total != uint64(loops*len(ps)) {
		t.Errorf("the counters hold %d packets, want %d", total, loops*len(ps))
	}
	t.Logf("%d loops of %d packets (%d legitimate each), %d reloads (%d prefixes added, %d changed, %d removed in all)", loops, len(ps), nLegit, reloads.Load(), added, changed, removed)
}
