package firewall

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Config is the firewall's configuration, one YAML file:
//
//	options:
//	  drop_fragments: true
//	  drop_malformed: true
//	  sample_every: 100        # one dropped packet in 100 to the ring buffer
//	  sample_all: false        # true: one packet in sample_every, any verdict
//	  syn_cookies: auto        # answer SYNs from XDP while under attack
//	limits:
//	  prefix_v4: 24            # per-source buckets count sources by /24
//	  prefix_v6: 64
//	  pps: {rate: 10000, burst: 2000}
//	  bps: {rate: 12500000, burst: 1500000}
//	  syn: {rate: 100, burst: 20}
//	  udp_amplification:
//	    dns: {rate: 500}
//	    ntp: {rate: 50}
//	  attack_pps: 1000000      # over this, every limit halves
//	rules:
//	  - name: office
//	    action: allow
//	    cidrs: [192.0.2.0/24, 2001:db8::/32]
//	  - name: ssh-scanners
//	    id: 100
//	    action: deny
//	    proto: tcp
//	    ports: "22"
//	    files: [scanners.txt]
//	    ipset: [blocklist.ipset]
//
// A limit left out (or with rate 0) is off.
type Config struct {
	Options Options `json:"options"`
	Limits  Limits  `json:"limits"`
	Rules   []Rule  `json:"rules"`
	// Dir is where relative list files are found: the configuration
	// file's directory for LoadConfig, the working directory if empty.
	Dir string `json:"-"`
}

// Options are the firewall's switches.
type Options struct {
	// DropFragments drops IPv4 and IPv6 fragments (RuleFragment).
	DropFragments bool `json:"drop_fragments"`
	// DropMalformed drops packets whose headers are truncated or
	// inconsistent (RuleMalformed); without it they pass, counted.
	DropMalformed bool `json:"drop_malformed"`
	// SampleEvery sends one dropped packet in this many, with its rule,
	// to the ring buffer "samples"; 0 sends none.
	SampleEvery uint64 `json:"sample_every"`
	// SampleAll samples every verdict, not only drops: one packet in
	// SampleEvery, whatever the action. With SampleEvery 1 the ring
	// buffer sees every packet with the rule, the action and the time the
	// program decided it by, so that a replay of them (CaptureAll, waggle
	// firewall capture --all) is exactly what the program did attached.
	// It costs a ring buffer record per sampled packet.
	SampleAll bool `json:"sample_all"`
	// NoTopTalkers stops the per-source counts (the map "talkers"): one
	// hash lookup a packet less, and no top talkers in status.
	NoTopTalkers bool `json:"no_top_talkers"`
	// SYNCookies is "on", "auto" or "off" (the default). On, while under
	// attack (Limits.AttackPPS), the program answers TCP SYNs from sources
	// no allow rule passed itself, from XDP, with a SYN-ACK whose sequence
	// number is a SYN cookie (RuleSYNCookie), and passes the ACKs whose
	// cookie checks (RuleSYNCookieACK), so that no SYN of a flood reaches
	// the stack. The kernel's helpers make the stack's cookies: the host
	// must run with net.ipv4.tcp_syncookies=2 for its listeners to accept
	// these ACKs. "auto" uses them where the kernel has the helpers
	// (bpf_tcp_raw_gen_syncookie_ipv4, Linux 6.0) and falls back to the
	// per-source SYN rate (Limits.SYN) elsewhere; "on" fails there. A
	// replay always has them.
	SYNCookies SYNCookieMode `json:"syn_cookies"`
}

// SYNCookieMode is Options.SYNCookies: "on", "auto", "off" or empty
// (off). YAML 1.1 reads an unquoted on and off as booleans, so true and
// false are taken for on and off.
type SYNCookieMode string

// UnmarshalJSON takes a string, or true and false for "on" and "off".
func (m *SYNCookieMode) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*m = "on"
		return nil
	case "false":
		*m = "off"
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("syn_cookies: on, auto or off: %w", err)
	}
	*m = SYNCookieMode(s)
	return nil
}

// Limits are the per-source rate limits.
type Limits struct {
	// PrefixV4 and PrefixV6 are how sources are counted: the source
	// address masked to this many bits (32, 24 for IPv4; 64, 128 for
	// IPv6). 0 means 32 and 64.
	PrefixV4 int `json:"prefix_v4"`
	PrefixV6 int `json:"prefix_v6"`
	// PPS is packets per second per source; Burst in packets.
	PPS Rate `json:"pps"`
	// BPS is bytes per second per source (the Ethernet frame's length);
	// Burst in bytes.
	BPS Rate `json:"bps"`
	// SYN is TCP SYNs (without ACK) per second per source.
	SYN Rate `json:"syn"`
	// UDPAmplification limits UDP from the source ports of the usual
	// reflection attacks, per source.
	UDPAmplification Amplification `json:"udp_amplification"`
	// AttackPPS is the global mark: while more packets than this arrive
	// in a second, every limit halves; it relaxes once a second sees
	// fewer than half. 0 never tightens.
	AttackPPS uint64 `json:"attack_pps"`
}

// Amplification are the limits on UDP from reflection ports.
type Amplification struct {
	DNS       Rate `json:"dns"`       // source port 53
	NTP       Rate `json:"ntp"`       // 123
	SSDP      Rate `json:"ssdp"`      // 1900
	Memcached Rate `json:"memcached"` // 11211
}

// Rate is a token bucket: Rate per second, and Burst beyond it (0 means
// one second's worth).
type Rate struct {
	Rate  uint64 `json:"rate"`
	Burst uint64 `json:"burst"`
}

// Rule is an allow or deny list.
type Rule struct {
	// Name names the rule in counters and explanations; unique.
	Name string `json:"name"`
	// ID is the rule's counter slot, RuleFirstUser to MaxRules-1; 0
	// assigns the lowest free one, in the order of the file. Give ids to
	// keep them stable while rules are added and removed.
	ID uint32 `json:"id"`
	// Action is "allow" (pass, skipping every limit) or "deny" (drop).
	Action string `json:"action"`
	// CIDRs are prefixes ("10.0.0.0/8") or addresses, IPv4 or IPv6.
	CIDRs []string `json:"cidrs"`
	// Files are plain CIDR files: one prefix or address per line, '#'
	// starts a comment.
	Files []string `json:"files"`
	// Ipset are ipset save files ("ipset save" output): the elements of
	// their "add SET ELEMENT" lines.
	Ipset []string `json:"ipset"`
	// Proto restricts the rule to one protocol: tcp, udp, icmp, icmpv6
	// or a number; empty for any.
	Proto string `json:"proto"`
	// Ports restricts it to a destination port or range ("22",
	// "1000-2000"), for TCP and UDP; empty for any.
	Ports string `json:"ports"`
}

// maxConfigBytes bounds a configuration file.
const maxConfigBytes = 16 << 20

// ParseConfig parses a YAML configuration; unknown fields are errors.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("firewall config: %d bytes, more than %d", len(data), maxConfigBytes)
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("firewall config: %w", err)
	}
	return &c, nil
}

// LoadConfig reads and parses the configuration file at path; its list
// files are relative to its directory.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("firewall config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("firewall config %s: %w", path, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Dir = filepath.Dir(path)
	return c, nil
}
