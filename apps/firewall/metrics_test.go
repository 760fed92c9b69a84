package firewall

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const talkerConfig = `
rules:
  - {name: no-ssh, action: deny, proto: tcp, ports: "22", cidrs: [198.51.100.0/24]}
`

// talkerPackets are five packets of 198.51.100.7 (the last one to port
// 22, which no-ssh drops), three of 10.1.1.1, one of 2001:db8::1 and a
// frame that is not IP (no source).
func talkerPackets(tb testing.TB) []Packet {
	tb.Helper()
	var ps []Packet
	at := testTime
	add := func(frame []byte) {
		ps = append(ps, Packet{Data: frame, Time: at})
		at = at.Add(time.Millisecond)
	}
	for range 4 {
		add(build(tb, pkt{src: "198.51.100.7", dst: "10.9.9.9", proto: "tcp", sport: 5000, dport: 80, ack: true, payload: 100}))
	}
	for i := range 3 {
		add(build(tb, pkt{src: "10.1.1.1", dst: "10.9.9.9", proto: "udp", sport: 5000, dport: 53, payload: 10 * i}))
	}
	add(build(tb, pkt{src: "198.51.100.7", dst: "10.9.9.9", proto: "tcp", sport: 5000, dport: 22, syn: true}))
	add(build(tb, pkt{src: "2001:db8::1", dst: "2001:db8::9", proto: "udp", sport: 5000, dport: 53}))
	arp := make([]byte, 42)
	copy(arp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06})
	add(arp)
	return ps
}

// wantTalkers adds up talkerPackets by source.
func wantTalkers(ps []Packet) map[netip.Addr]Counter {
	want := map[netip.Addr]Counter{}
	for _, p := range ps {
		var a netip.Addr
		switch {
		case p.Data[12] == 0x08 && p.Data[13] == 0x00:
			a = netip.AddrFrom4([4]byte(p.Data[26:30]))
		case p.Data[12] == 0x86 && p.Data[13] == 0xdd:
			a = netip.AddrFrom16([16]byte(p.Data[22:38]))
		default:
			continue
		}
		c := want[a]
		c.Packets++
		c.Bytes += uint64(len(p.Data))
		want[a] = c
	}
	return want
}

func TestReplayer_topTalkers(t *testing.T) {
	comp := mustCompile(t, talkerConfig)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := talkerPackets(t)
	if err := r.Run(ps, make([]Verdict, len(ps))); err != nil {
		t.Fatal(err)
	}
	want := wantTalkers(ps)
	all, err := r.TopTalkers(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("%d talkers %+v, want %d", len(all), all, len(want))
	}
	for _, tk := range all {
		if w := want[tk.Addr]; w.Packets != tk.Packets || w.Bytes != tk.Bytes {
			t.Errorf("%s: %d packets, %d bytes; want %d, %d", tk.Addr, tk.Packets, tk.Bytes, w.Packets, w.Bytes)
		}
	}
	top, err := r.TopTalkers(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top[0].Addr != netip.MustParseAddr("198.51.100.7") || top[1].Addr != netip.MustParseAddr("10.1.1.1") {
		t.Fatalf("top 2: %+v", top)
	}
	if got := comp.RuleName(top[0].Rule); got != "no-ssh" {
		t.Errorf("198.51.100.7's last packet decided by %s, want no-ssh", got)
	}
	if got := comp.RuleName(top[1].Rule); got != "default" {
		t.Errorf("10.1.1.1's last packet decided by %s, want default", got)
	}
	if top[0].Last != uint64(ps[7].Time.UnixNano()) {
		t.Errorf("198.51.100.7 last seen at %d, want %d", top[0].Last, ps[7].Time.UnixNano())
	}
}

// scrape serves c on an HTTP server, gets /metrics and parses it with
// Prometheus's text parser.
func scrape(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	return scrapeURL(t, srv.URL+"/metrics")
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metricValues maps each series of family name (its labels, as
// "k=v,k=v" in the labels' order) to its value.
func metricValues(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := ""
		for i, l := range m.GetLabel() {
			if i > 0 {
				key += ","
			}
			key += l.GetName() + "=" + l.GetValue()
		}
		switch {
		case m.GetCounter() != nil:
			out[key] = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// checkScrape checks a scrape against what s's maps say.
func checkScrape(t *testing.T, fams map[string]*dto.MetricFamily, s Stats, comp *Compiled, top int) {
	t.Helper()
	counters, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if len(counters) == 0 {
		t.Fatal("the firewall counted nothing")
	}
	pk, by := metricValues(fams, "waggle_firewall_rule_packets_total"), metricValues(fams, "waggle_firewall_rule_bytes_total")
	if len(pk) != len(counters) || len(by) != len(counters) {
		t.Errorf("%d and %d rule series, want %d: %v", len(pk), len(by), len(counters), pk)
	}
	total := map[string]Counter{}
	for id, c := range counters {
		key := fmt.Sprintf("id=%d,rule=%s,verdict=%s", id, comp.RuleName(id), comp.VerdictOf(id))
		if pk[key] != float64(c.Packets) || by[key] != float64(c.Bytes) {
			t.Errorf("%s: %v packets, %v bytes; the map says %d, %d", key, pk[key], by[key], c.Packets, c.Bytes)
		}
		v := total[comp.VerdictOf(id)]
		v.Packets += c.Packets
		v.Bytes += c.Bytes
		total[comp.VerdictOf(id)] = v
	}
	vp, vb := metricValues(fams, "waggle_firewall_verdict_packets_total"), metricValues(fams, "waggle_firewall_verdict_bytes_total")
	for _, v := range []string{"pass", "drop"} {
		if vp["verdict="+v] != float64(total[v].Packets) || vb["verdict="+v] != float64(total[v].Bytes) {
			t.Errorf("verdict %s: %v packets, %v bytes; want %d, %d", v, vp["verdict="+v], vb["verdict="+v], total[v].Packets, total[v].Bytes)
		}
	}
	on, err := s.UnderAttack()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := metricValues(fams, "waggle_firewall_under_attack")[""], map[bool]float64{true: 1}[on]; got != want {
		t.Errorf("under_attack %v, want %v", got, want)
	}
	lost, err := s.SamplesLost()
	if err != nil {
		t.Fatal(err)
	}
	if got := metricValues(fams, "waggle_firewall_samples_lost_total")[""]; got != float64(lost) {
		t.Errorf("samples_lost_total %v, the map says %d", got, lost)
	}
	ts, err := s.TopTalkers(top)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) == 0 {
		t.Fatal("no talkers")
	}
	tp, tb := metricValues(fams, "waggle_firewall_talker_packets"), metricValues(fams, "waggle_firewall_talker_bytes")
	if len(tp) != len(ts) || len(tb) != len(ts) {
		t.Errorf("%d and %d talker series, want %d: %v", len(tp), len(tb), len(ts), tp)
	}
	for _, tk := range ts {
		key := "rule=" + comp.RuleName(tk.Rule) + ",source=" + tk.Addr.String()
		if tp[key] != float64(tk.Packets) || tb[key] != float64(tk.Bytes) {
			t.Errorf("talker %s: %v packets, %v bytes; the map says %d, %d", key, tp[key], tb[key], tk.Packets, tk.Bytes)
		}
	}
}

func TestCollector_replayer(t *testing.T) {
	comp := mustCompile(t, talkerConfig)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := talkerPackets(t)
	if err := r.Run(ps, make([]Verdict, len(ps))); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, NewCollector(r, comp, 2))
	checkScrape(t, fams, r, comp, 2)
	// The values are the maps' at each scrape: run the packets again.
	if err := r.Run(ps, make([]Verdict, len(ps))); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, NewCollector(r, comp, 2))
	checkScrape(t, fams, r, comp, 2)
	id, _ := comp.RuleID("no-ssh")
	key := "id=" + strconv.Itoa(int(id)) + ",rule=no-ssh,verdict=drop"
	if got := metricValues(fams, "waggle_firewall_rule_packets_total")[key]; got != 2 {
		t.Errorf("%s: %v packets, want 2", key, got)
	}
	if got := metricValues(fams, "waggle_firewall_talker_packets")["rule=no-ssh,source=198.51.100.7"]; got != 10 {
		t.Errorf("198.51.100.7: %v packets, want 10", got)
	}
}

func TestReplayer_noTopTalkers(t *testing.T) {
	comp := mustCompile(t, "options: {no_top_talkers: true}\n"+talkerConfig)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := talkerPackets(t)
	if err := r.Run(ps, make([]Verdict, len(ps))); err != nil {
		t.Fatal(err)
	}
	ts, err := r.TopTalkers(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 0 {
		t.Errorf("no_top_talkers, yet talkers %+v", ts)
	}
	counters, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if counters[RuleDefault].Packets == 0 {
		t.Errorf("counters %v: the packets were not counted", counters)
	}
}

// lostPackets are more sampled packets (sample_all, sample_every 1) than
// the 1 MiB ring buffer holds, and how many of their samples it holds: a
// record is a sample and the ring's 8-byte header.
func lostPackets(t *testing.T) ([]Packet, int) {
	t.Helper()
	frame := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "udp", sport: 1000, dport: 2000, payload: 10})
	ps := make([]Packet, 7000)
	for i := range ps {
		ps[i] = Packet{Data: frame, Time: testTime.Add(time.Duration(i) * time.Microsecond)}
	}
	return ps, (1 << 20) / (SampleSize + 8)
}

const lostConfig = "options: {sample_all: true, sample_every: 1}\n"

// TestSamplesLost fills the ring buffer with no reader: every sample past
// its capacity counts as lost, and the exporter says so.
func TestSamplesLost(t *testing.T) {
	comp := mustCompile(t, lostConfig)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps, fit := lostPackets(t)
	if err := r.Run(ps[:fit], make([]Verdict, fit)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.SamplesLost(); err != nil || n != 0 {
		t.Fatalf("%d samples in a ring that holds them: %d lost (%v)", fit, n, err)
	}
	if err := r.Run(ps[fit:], make([]Verdict, len(ps)-fit)); err != nil {
		t.Fatal(err)
	}
	n, err := r.SamplesLost()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(ps) - fit); n != want {
		t.Errorf("%d samples lost, want %d (%d packets, %d fit)", n, want, len(ps), fit)
	}
	if got := metricValues(scrape(t, NewCollector(r, comp, 0)), "waggle_firewall_samples_lost_total")[""]; got != float64(n) {
		t.Errorf("samples_lost_total %v, want %d", got, n)
	}
}
