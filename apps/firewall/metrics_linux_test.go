package firewall

import (
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// statsSnapshot is what a Stats said once.
type statsSnapshot struct {
	counters map[uint32]Counter
	talkers  []Talker
	attack   bool
	lost     uint64
}

func (s *statsSnapshot) Counters() (map[uint32]Counter, error) { return s.counters, nil }
func (s *statsSnapshot) TopTalkers(int) ([]Talker, error)      { return s.talkers, nil }
func (s *statsSnapshot) UnderAttack() (bool, error)            { return s.attack, nil }
func (s *statsSnapshot) SamplesLost() (uint64, error)          { return s.lost, nil }

func snapshot(t *testing.T, s Stats, top int) *statsSnapshot {
	t.Helper()
	var snap statsSnapshot
	var err error
	if snap.counters, err = s.Counters(); err != nil {
		t.Fatal(err)
	}
	if snap.talkers, err = s.TopTalkers(top); err != nil {
		t.Fatal(err)
	}
	if snap.attack, err = s.UnderAttack(); err != nil {
		t.Fatal(err)
	}
	if snap.lost, err = s.SamplesLost(); err != nil {
		t.Fatal(err)
	}
	return &snap
}

// TestCollector_pinned applies the firewall on a veth, sends it packets,
// and scrapes an exporter of its pinned maps over HTTP: the values are
// the maps'.
func TestCollector_pinned(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	dir := ktest.BPFFS(t) + "/fw"
	udp := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "udp", sport: 1000, dport: 2000, payload: 10})
	tcp := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "tcp", sport: 1000, dport: 22, ack: true})
	other := build(t, pkt{src: "10.9.0.7", dst: "10.9.0.2", proto: "tcp", sport: 1000, dport: 80, ack: true})
	comp := mustCompile(t, `rules: [{name: deny-udp, id: 20, action: deny, proto: udp, cidrs: [10.9.0.0/24]}]`)
	if _, err := Apply(comp, ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	fd := v.SenderAtPeer(t)
	for _, f := range [][]byte{udp, tcp, udp, tcp, udp, tcp, other} {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatal(err)
		}
	}
	waitCounters(t, dir, comp, "deny-udp", 3)
	waitCounters(t, dir, comp, "default", 4)

	p, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(p, comp, 5)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	// The peer may send packets of its own (IPv6 neighbour discovery):
	// compare a scrape with the maps when they did not change around it.
	for try := 0; ; try++ {
		before := snapshot(t, p, 5)
		fams := scrapeURL(t, srv.URL+"/metrics")
		after := snapshot(t, p, 5)
		if !reflect.DeepEqual(before, after) {
			if try == 20 {
				t.Fatal("the maps kept changing")
			}
			continue
		}
		checkScrape(t, fams, before, comp, 5)
		if got := metricValues(fams, "waggle_firewall_rule_packets_total")["id=20,rule=deny-udp,verdict=drop"]; got != 3 {
			t.Errorf("deny-udp: %v packets, want 3", got)
		}
		tp := metricValues(fams, "waggle_firewall_talker_packets")
		if tp["rule=default,source=10.9.0.1"] != 6 || tp["rule=default,source=10.9.0.7"] != 1 {
			t.Errorf("talkers %v, want 10.9.0.1 with 6 packets and 10.9.0.7 with 1, both last by default", tp)
		}
		break
	}
}
