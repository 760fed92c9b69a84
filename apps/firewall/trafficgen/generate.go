package trafficgen

// apps/firewall/testdata holds the capture the firewall's tests replay,
// Preset("testdata"): ten seconds of what the victim's interface receives
// (no outbound packets), attacks from second 2 to second 8.
//
//	attacks.pcap          Ethernet, nanosecond timestamps, 4,5xx packets
//	attacks.labels.jsonl  one line a packet, in order:
//	                      {"index":0,"label":"legit","kind":"dns","dir":"in"}
//	attacks.hosts.json    the addresses chosen (Hosts): clients, resolvers,
//	                      NTP servers, reflectors, scanner
//
// TestTestdata_current checks the files are what this package generates.
//go:generate go run ./cmd/fwgen -preset testdata -hosts ../testdata/attacks.hosts.json ../testdata/attacks.pcap
