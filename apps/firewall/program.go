package firewall

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/cilium/ebpf"
)

//go:embed bpf/firewall.o
var object []byte

// ProgramName is the XDP program's name in the object.
const ProgramName = "xdp_firewall"

// Object returns the firewall's clang-built object file (a copy).
func Object() []byte { return bytes.Clone(object) }

// Spec returns cilium/ebpf's spec of the firewall's object, for the kernel
// (kernel.NewCollection) and for waggle (waggle.NewCollection) alike.
func Spec() (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(object))
	if err != nil {
		return nil, fmt.Errorf("firewall object: %w", err)
	}
	return spec, nil
}

// The fixed rules: ids the program itself gives verdicts (enum in
// bpf/firewall.c). The configuration's rules take ids from RuleFirstUser
// up to MaxRules-1.
const (
	RuleDefault      uint32 = 0  // passed every check
	RuleNotIP        uint32 = 1  // neither IPv4 nor IPv6: passed
	RuleMalformed    uint32 = 2  // bad headers: dropped with Options.DropMalformed, else passed
	RuleFragment     uint32 = 3  // an IP fragment, dropped with Options.DropFragments
	RuleSYNRate      uint32 = 4  // over Limits.SYN
	RuleAmpDNS       uint32 = 5  // UDP from port 53 over Limits.UDPAmplification.DNS
	RuleAmpNTP       uint32 = 6  // from port 123
	RuleAmpSSDP      uint32 = 7  // from port 1900
	RuleAmpMemcached uint32 = 8  // from port 11211
	RuleRatePPS      uint32 = 9  // over Limits.PPS
	RuleRateBPS      uint32 = 10 // over Limits.BPS
	// RuleSYNCookie is a TCP SYN answered from XDP, while under attack
	// with Options.SYNCookies, by a SYN-ACK carrying a cookie (XDP_TX):
	// legitimate clients' SYNs too, which complete with the ACK.
	RuleSYNCookie uint32 = 11
	// RuleSYNCookieACK is an ACK whose cookie checks, while under attack
	// with Options.SYNCookies: passed, past the rate limits.
	RuleSYNCookieACK uint32 = 12
	RuleFirstUser    uint32 = 16
	// MaxRules is the size of the counters array: rule ids are below it.
	MaxRules = 4096
	// MaxPrefixes is the capacity of each of the four LPM tries.
	MaxPrefixes = 1 << 20
)

var fixedRules = map[uint32]string{
	RuleDefault:      "default",
	RuleNotIP:        "not-ip",
	RuleMalformed:    "malformed",
	RuleFragment:     "fragment",
	RuleSYNRate:      "syn-rate",
	RuleAmpDNS:       "udp-amp-dns",
	RuleAmpNTP:       "udp-amp-ntp",
	RuleAmpSSDP:      "udp-amp-ssdp",
	RuleAmpMemcached: "udp-amp-memcached",
	RuleRatePPS:      "rate-pps",
	RuleRateBPS:      "rate-bps",
	RuleSYNCookie:    "syn-cookie",
	RuleSYNCookieACK: "syn-cookie-ack",
}

// Map names in the object.
const (
	MapConfig   = "config"
	MapAllow4   = "allow4"
	MapAllow6   = "allow6"
	MapDeny4    = "deny4"
	MapDeny6    = "deny6"
	MapCounters = "counters"
	MapSamples  = "samples"
	MapBuckets  = "buckets"
	MapAttack   = "attack"
	// mapDrops counts, per CPU, the packets that could be sampled (the
	// cadence of Options.SampleEvery) at key 0, and the samples the ring
	// buffer had no room for at key dropsLost.
	mapDrops = "drops"
	// MapSYNPassed holds, by TCP port, when a SYN last went to the stack
	// (see Options.SYNCookies).
	MapSYNPassed = "syn_passed"
)

// config.flags
const (
	flagDropFragments = 1 << 0
	flagDropMalformed = 1 << 1
	flagReplay        = 1 << 2
	flagNoTalkers     = 1 << 3
	flagSampleAll     = 1 << 4
	flagSYNCookies    = 1 << 8
)

// cookieHelpersVar is the object's constant that says whether the kernel
// has the SYN cookie helpers (fw_cookie_helpers); the loader clears it
// where they are missing, which makes the calls dead code.
const cookieHelpersVar = "fw_cookie_helpers"

// dropsLost is the key of the map drops that counts lost samples
// (DROPS_LOST).
const dropsLost = 1

// Sizes of the C structs.
const (
	configSize  = 136 // struct config
	ruleSize    = 12  // struct rule
	lpm4Size    = 8   // struct lpm4
	lpm6Size    = 20  // struct lpm6
	counterSize = 16  // struct counter
	// MetaSize is the XDP metadata a replayed packet carries (struct
	// replay_meta): the time in, the deciding rule out.
	MetaSize = 16
	// SampleSize is a sample in the ring buffer (struct sample): rule,
	// length and time, SampleBytes of the packet, then the action.
	SampleSize = 16 + SampleBytes + 8
	// SampleBytes is how much of a sampled packet a sample holds.
	SampleBytes = 128
)
