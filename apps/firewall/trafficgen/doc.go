// Package trafficgen writes labelled packet captures for testing the
// firewall: legitimate flows (TCP handshakes and data, HTTPS, DNS and NTP at
// normal rates, IPv6) mixed with attacks (a SYN flood from spoofed IPv4 and
// IPv6 sources, UDP amplification from reflectors on ports 53, 123, 1900 and
// 11211, a slow-rate port scan), and optionally IP fragments and malformed
// headers.
//
// Every packet carries a Label (its Class, a Kind within the class and its
// Direction), so a test can count the verdicts per class and check "drops at
// least 99% of attack packets and at most 0.1% of legitimate ones". Labels
// travel beside the pcap as JSON lines ({"index":0,"label":"legit",...}),
// one per packet in capture order; ReadLabels reads them back.
//
// A Scenario is deterministic: the same Scenario gives the same bytes on
// every run. Each traffic class draws from its own random stream, seeded
// from Scenario.Seed and the class, so changing one class's rate does not
// change the packets of another. Arrivals are Poisson processes (flows,
// queries and attack packets); inside a flow, packets are spaced by the
// flow's round-trip time as seen at the victim, which is what the
// firewall's token buckets measure.
//
// Generation streams: a Generator holds only the packets of flows in
// progress, so memory does not grow with the capture. A Scenario is
// validated first; rates that would produce more than MaxPackets packets,
// negative or non-finite rates and absurd sizes give an error before
// anything is generated.
package trafficgen
