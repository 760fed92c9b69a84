package trafficgen_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/waggle-bpf/waggle/apps/firewall/trafficgen"
)

// Write a second of a SYN flood at 1,000 packets per second over HTTPS
// traffic, and count the packets of each class.
func ExampleWrite() {
	s := trafficgen.Scenario{
		Seed:          1,
		Duration:      time.Second,
		AttackStart:   0,
		AttackEnd:     time.Second,
		HTTPSFlows:    10,
		SYNFlood4:     1000,
		TCPFlows:      trafficgen.Off,
		IPv6Flows:     trafficgen.Off,
		DNSRate:       trafficgen.Off,
		NTPRate:       trafficgen.Off,
		SYNFlood6:     trafficgen.Off,
		Amplification: trafficgen.Off,
		ScanRate:      trafficgen.Off,
	}
	var pcap, labels bytes.Buffer
	counts, err := trafficgen.Write(s, &pcap, &labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(counts[trafficgen.SYNFlood] > 900, counts[trafficgen.Legit] > 0)
	ls, err := trafficgen.ReadLabels(&labels, 0)
	fmt.Println(len(ls) == counts[trafficgen.SYNFlood]+counts[trafficgen.Legit], err)
	// Output:
	// true true
	// true <nil>
}
