package trafficgen

// The capture the firewall's tests replay; TestTestdata_current checks it
// is what this package generates.
//go:generate go run ./cmd/fwgen -preset testdata -hosts ../testdata/attacks.hosts.json ../testdata/attacks.pcap
