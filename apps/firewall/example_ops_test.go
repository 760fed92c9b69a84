package firewall_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waggle-bpf/waggle/apps/firewall"
)

// compileOrPanic compiles a configuration for the examples.
func compileOrPanic(yaml string) *firewall.Compiled {
	cfg, err := firewall.ParseConfig([]byte(yaml))
	if err != nil {
		panic(err)
	}
	comp, err := firewall.Compile(cfg)
	if err != nil {
		panic(err)
	}
	return comp
}

// ipv4Frame is an Ethernet frame with an IPv4 header from src.
func ipv4Frame(src [4]byte) []byte {
	frame := make([]byte, 14+20)
	frame[12], frame[13] = 0x08, 0x00
	frame[14], frame[16], frame[17] = 0x45, 0, 20
	copy(frame[26:], src[:])
	return frame
}

// Export a firewall's counters and top talkers to Prometheus: here a
// replay's; firewall.OpenPinned gives an applied firewall's.
func ExampleNewCollector() {
	comp := compileOrPanic(`rules: [{name: bad-net, action: deny, cidrs: [203.0.113.0/24]}]`)
	r, err := firewall.NewReplayer(comp, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	pkts := []firewall.Packet{
		{Data: ipv4Frame([4]byte{203, 0, 113, 7}), Time: time.Unix(1, 0)},
		{Data: ipv4Frame([4]byte{203, 0, 113, 7}), Time: time.Unix(2, 0)},
		{Data: ipv4Frame([4]byte{192, 0, 2, 1}), Time: time.Unix(3, 0)},
	}
	if err := r.Run(pkts, make([]firewall.Verdict, len(pkts))); err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(firewall.NewCollector(r, comp, 1))
	fams, err := reg.Gather() // promhttp.HandlerFor(reg, ...) serves the same
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		if f.GetName() != "waggle_firewall_talker_packets" {
			continue
		}
		for _, m := range f.GetMetric() {
			fmt.Println(m.GetLabel()[0].GetValue(), m.GetLabel()[1].GetValue(), m.GetGauge().GetValue())
		}
	}
	// Output: bad-net 203.0.113.7 2
}

// Reload a replay's rules in place, as apply reloads an attached firewall.
func ExampleReplayer_Reload() {
	r, err := firewall.NewReplayer(compileOrPanic(`rules: [{name: bad-net, action: deny, cidrs: [203.0.113.0/24]}]`), nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	res, err := r.Reload(compileOrPanic(`rules: [{name: bad-net, action: deny, cidrs: [198.51.100.0/24]}]`))
	if err != nil {
		panic(err)
	}
	v := make([]firewall.Verdict, 1)
	if err := r.Run([]firewall.Packet{{Data: ipv4Frame([4]byte{203, 0, 113, 7}), Time: time.Unix(1, 0)}}, v); err != nil {
		panic(err)
	}
	fmt.Println(res.Added, res.Removed, firewall.ActionName(v[0].Action))
	// Output: 1 1 XDP_PASS
}
