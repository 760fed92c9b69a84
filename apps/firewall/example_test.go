package firewall_test

import (
	"fmt"
	"time"

	"github.com/waggle-bpf/waggle/apps/firewall"
)

// Compile a configuration and replay a packet through the firewall in
// user space.
func ExampleCompile() {
	cfg, err := firewall.ParseConfig([]byte(`
rules:
  - {name: bad-net, action: deny, cidrs: [203.0.113.0/24]}
`))
	if err != nil {
		panic(err)
	}
	comp, err := firewall.Compile(cfg)
	if err != nil {
		panic(err)
	}
	r, err := firewall.NewReplayer(comp, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	// An Ethernet frame with an IPv4 header from 203.0.113.7.
	frame := make([]byte, 14+20)
	frame[12], frame[13] = 0x08, 0x00
	frame[14], frame[16], frame[17] = 0x45, 0, 20 // version, IHL, total length
	copy(frame[26:], []byte{203, 0, 113, 7})
	v := make([]firewall.Verdict, 1)
	if err := r.Run([]firewall.Packet{{Data: frame, Time: time.Unix(1, 0)}}, v); err != nil {
		panic(err)
	}
	fmt.Println(firewall.ActionName(v[0].Action), comp.RuleName(v[0].Rule))
	// Output: XDP_DROP bad-net
}
