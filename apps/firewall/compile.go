package firewall

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// List is the contents of one LPM trie: Len() keys and values, packed in
// the C structs' layout (struct lpm4 or lpm6, struct rule).
type List struct {
	// Map is the map's name in the object: allow4, allow6, deny4, deny6.
	Map       string
	KeySize   int
	ValueSize int
	Keys      []byte
	Values    []byte
}

// Len returns the number of prefixes.
func (l *List) Len() int { return len(l.Keys) / l.KeySize }

// Entry returns the i'th key and value.
func (l *List) Entry(i int) (key, value []byte) {
	return l.Keys[i*l.KeySize : (i+1)*l.KeySize], l.Values[i*l.ValueSize : (i+1)*l.ValueSize]
}

// RuleInfo names a rule id.
type RuleInfo struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	// Action is "allow" or "deny" for the configuration's rules, "pass",
	// "drop", "tx" (answered: RuleSYNCookie) or "option" (dropping or
	// passing by Options) for fixed ones.
	Action string `json:"action"`
	// Prefixes is how many prefixes the rule put in the tries.
	Prefixes int `json:"prefixes,omitempty"`
}

// Compiled is a Config turned into the maps' contents.
type Compiled struct {
	// Config is the value of config[0] (struct config), for an attached
	// program: Fill sets the replay flag on a copy when asked.
	Config []byte
	// Lists are the four tries, in the order allow4, allow6, deny4, deny6.
	Lists []List
	// Rules are every rule, fixed and configured, by id.
	Rules []RuleInfo
	// SYNCookies is Options.SYNCookies: "on", "auto" or "off".
	SYNCookies string
	byName     map[string]uint32
	byID       map[uint32]int
}

// RuleName returns the name of rule id, or "rule-ID" for an id no rule has.
func (c *Compiled) RuleName(id uint32) string {
	if i, ok := c.byID[id]; ok {
		return c.Rules[i].Name
	}
	return "rule-" + strconv.FormatUint(uint64(id), 10)
}

// Rule returns rule id's RuleInfo.
func (c *Compiled) Rule(id uint32) (RuleInfo, bool) {
	i, ok := c.byID[id]
	if !ok {
		return RuleInfo{}, false
	}
	return c.Rules[i], true
}

// RuleID returns the id of the rule named name.
func (c *Compiled) RuleID(name string) (uint32, bool) {
	id, ok := c.byName[name]
	return id, ok
}

// Putter is a map Fill writes into: waggle's *waggle.Map and
// cilium/ebpf's *ebpf.Map both are.
type Putter interface {
	Put(key, value any) error
}

// Fill writes the compiled contents into the maps lookup returns by name
// (nil for a map that does not exist). replay sets the replay flag: the
// program then takes its clock from each packet's metadata and reports
// the deciding rule there (see Replayer); an attached program must not
// have it.
func (c *Compiled) Fill(lookup func(name string) Putter, replay bool) error {
	get := func(name string) (Putter, error) {
		m := lookup(name)
		if m == nil {
			return nil, fmt.Errorf("firewall: no map %s", name)
		}
		return m, nil
	}
	m, err := get(MapConfig)
	if err != nil {
		return err
	}
	cfg := slices.Clone(c.Config)
	if replay {
		ne.PutUint32(cfg, ne.Uint32(cfg)|flagReplay)
	}
	if err := m.Put(uint32(0), cfg); err != nil {
		return fmt.Errorf("firewall: map %s: %w", MapConfig, err)
	}
	for i := range c.Lists {
		l := &c.Lists[i]
		m, err := get(l.Map)
		if err != nil {
			return err
		}
		for j := 0; j < l.Len(); j++ {
			k, v := l.Entry(j)
			if err := m.Put(k, v); err != nil {
				return fmt.Errorf("firewall: map %s, entry %d: %w", l.Map, j, err)
			}
		}
	}
	return nil
}

// ne is the byte order of the program's integers: clang's "bpf" target
// is the host's.
var ne = binary.NativeEndian

// filter is a rule's protocol and port range, as struct rule holds them.
type filter struct {
	proto          uint8
	portLo, portHi uint16
}

func (f filter) any() bool { return f == filter{} }

type prefixEntry struct {
	p    netip.Prefix
	rule int // index in cfg.Rules
}

// Compile checks cfg and turns it into the maps' contents. Its errors
// name the rule, the file and line, and the prefix at fault: a bad CIDR,
// a prefix two rules of one action both list, a prefix of a rule with a
// protocol or port filter nested in another rule's prefix (the longest
// match would hide the outer rule from those addresses), more than
// MaxPrefixes prefixes in a trie, an unknown or duplicate rule name or id.
func Compile(cfg *Config) (*Compiled, error) {
	c := &Compiled{byName: map[string]uint32{}, byID: map[uint32]int{}}
	conf, err := compileLimits(cfg)
	if err != nil {
		return nil, err
	}
	c.Config = conf
	switch c.SYNCookies = string(cfg.Options.SYNCookies); c.SYNCookies {
	case "":
		c.SYNCookies = "off"
	case "on", "auto", "off":
	default:
		return nil, fmt.Errorf("firewall config: options.syn_cookies %q: on, auto or off", c.SYNCookies)
	}

	for id := uint32(0); id < RuleFirstUser; id++ {
		name, ok := fixedRules[id]
		if !ok {
			continue
		}
		action := "drop"
		switch id {
		case RuleDefault, RuleNotIP, RuleSYNCookieACK:
			action = "pass"
		case RuleSYNCookie:
			action = "tx"
		case RuleMalformed, RuleFragment:
			action = "option"
		}
		c.addRule(RuleInfo{ID: id, Name: name, Action: action})
	}

	if n := len(cfg.Rules); n > MaxRules-int(RuleFirstUser) {
		return nil, fmt.Errorf("firewall config: %d rules, more than %d", n, MaxRules-int(RuleFirstUser))
	}
	ids := make([]uint32, len(cfg.Rules))
	filters := make([]filter, len(cfg.Rules))
	used := map[uint32]string{}
	for i, r := range cfg.Rules {
		where := fmt.Sprintf("rule %d (%s)", i+1, r.Name)
		if r.Name == "" || strings.ContainsAny(r.Name, " \t\n") {
			return nil, fmt.Errorf("firewall config: %s: a rule needs a name without spaces", where)
		}
		if _, ok := c.byName[r.Name]; ok {
			return nil, fmt.Errorf("firewall config: %s: the name is taken", where)
		}
		c.byName[r.Name] = 0
		if r.Action != "allow" && r.Action != "deny" {
			return nil, fmt.Errorf("firewall config: %s: action %q: allow or deny", where, r.Action)
		}
		if r.ID != 0 {
			if r.ID < RuleFirstUser || r.ID >= MaxRules {
				return nil, fmt.Errorf("firewall config: %s: id %d: rule ids are %d to %d", where, r.ID, RuleFirstUser, MaxRules-1)
			}
			if other, ok := used[r.ID]; ok {
				return nil, fmt.Errorf("firewall config: %s: id %d is rule %s's too", where, r.ID, other)
			}
			used[r.ID] = r.Name
			ids[i] = r.ID
		}
		if filters[i], err = parseFilter(r.Proto, r.Ports); err != nil {
			return nil, fmt.Errorf("firewall config: %s: %w", where, err)
		}
	}
	next := RuleFirstUser
	for i, r := range cfg.Rules {
		if ids[i] != 0 {
			continue
		}
		for used[next] != "" {
			next++
		}
		ids[i] = next
		used[next] = r.Name
	}

	var v4, v6 [2][]prefixEntry // [allow, deny]
	counts := make([]int, len(cfg.Rules))
	for i, r := range cfg.Rules {
		where := fmt.Sprintf("firewall config: rule %s", r.Name)
		act := 0
		if r.Action == "deny" {
			act = 1
		}
		add := func(p netip.Prefix) error {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p))
			lst := &v6[act]
			if p.Addr().Is4() {
				lst = &v4[act]
			}
			if len(*lst) >= MaxPrefixes {
				return fmt.Errorf("more than %d %s prefixes (the trie's size)", MaxPrefixes, r.Action)
			}
			*lst = append(*lst, prefixEntry{p: p, rule: i})
			counts[i]++
			return nil
		}
		for _, s := range r.CIDRs {
			p, err := parsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if err := add(p); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		for _, f := range r.Files {
			if err := readCIDRFile(cfg.Dir, f, add); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		for _, f := range r.Ipset {
			if err := readIpsetFile(cfg.Dir, f, add); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
	}

	names := [2]string{"allow", "deny"}
	for act := range 2 {
		for fam, lst := range [2][]prefixEntry{v4[act], v6[act]} {
			l, err := buildList(names[act]+[2]string{"4", "6"}[fam], lst, cfg.Rules, ids, filters)
			if err != nil {
				return nil, fmt.Errorf("firewall config: %w", err)
			}
			c.Lists = append(c.Lists, l)
		}
	}
	for i, r := range cfg.Rules {
		c.addRule(RuleInfo{ID: ids[i], Name: r.Name, Action: r.Action, Prefixes: counts[i]})
	}
	slices.SortFunc(c.Rules, func(a, b RuleInfo) int { return int(a.ID) - int(b.ID) })
	for i, r := range c.Rules {
		c.byID[r.ID] = i
	}
	return c, nil
}

// unmapBits is how many bits an IPv4-mapped IPv6 prefix loses when
// unmapped (96), or 0.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return 96
	}
	return 0
}

func (c *Compiled) addRule(r RuleInfo) {
	c.Rules = append(c.Rules, r)
	c.byName[r.Name] = r.ID
}

// buildList sorts a trie's prefixes, checks them against each other and
// packs them.
func buildList(name string, lst []prefixEntry, rules []Rule, ids []uint32, filters []filter) (List, error) {
	keySize := lpm4Size
	if strings.HasSuffix(name, "6") {
		keySize = lpm6Size
	}
	slices.SortFunc(lst, func(a, b prefixEntry) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	})
	l := List{Map: name, KeySize: keySize, ValueSize: ruleSize}
	var stack []prefixEntry // the prefixes enclosing the current one
	var last prefixEntry
	for i, e := range lst {
		if i > 0 && e.p == last.p {
			if e.rule == last.rule {
				continue // listed twice by one rule
			}
			return List{}, fmt.Errorf("%s is in rules %s and %s (both %s)", e.p, rules[last.rule].Name, rules[e.rule].Name, rules[e.rule].Action)
		}
		for len(stack) > 0 && !(stack[len(stack)-1].p.Bits() <= e.p.Bits() && stack[len(stack)-1].p.Contains(e.p.Addr())) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			out := stack[len(stack)-1]
			if out.rule != e.rule && !filters[e.rule].any() && filters[e.rule] != filters[out.rule] {
				return List{}, fmt.Errorf("rule %s's %s lies inside rule %s's %s and has a narrower protocol or port filter: the most specific prefix decides, so rule %s would no longer apply to %s (split the prefixes or give both rules the same filter)",
					rules[e.rule].Name, e.p, rules[out.rule].Name, out.p, rules[out.rule].Name, e.p)
			}
		}
		stack = append(stack, e)
		last = e

		key := make([]byte, keySize)
		ne.PutUint32(key, uint32(e.p.Bits()))
		a := e.p.Addr().AsSlice()
		copy(key[4:], a)
		f := filters[e.rule]
		val := make([]byte, ruleSize)
		ne.PutUint32(val, ids[e.rule])
		val[4] = f.proto
		ne.PutUint16(val[6:], f.portLo)
		ne.PutUint16(val[8:], f.portHi)
		l.Keys = append(l.Keys, key...)
		l.Values = append(l.Values, val...)
	}
	return l, nil
}

// parseFilter parses a rule's proto and ports.
func parseFilter(proto, ports string) (filter, error) {
	var f filter
	switch strings.ToLower(proto) {
	case "":
	case "tcp":
		f.proto = 6
	case "udp":
		f.proto = 17
	case "icmp":
		f.proto = 1
	case "icmpv6", "ipv6-icmp":
		f.proto = 58
	default:
		n, err := strconv.ParseUint(proto, 10, 8)
		if err != nil || n == 0 {
			return f, fmt.Errorf("proto %q: tcp, udp, icmp, icmpv6 or a protocol number 1-255", proto)
		}
		f.proto = uint8(n)
	}
	if ports == "" {
		return f, nil
	}
	if f.proto != 0 && f.proto != 6 && f.proto != 17 {
		return f, fmt.Errorf("ports %q: only TCP and UDP have ports", ports)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || l == 0 || l > h {
		return f, fmt.Errorf("ports %q: a port or a range LOW-HIGH of 1-65535", ports)
	}
	f.portLo, f.portHi = uint16(l), uint16(h)
	return f, nil
}

// compileLimits builds struct config.
func compileLimits(cfg *Config) ([]byte, error) {
	b := make([]byte, configSize)
	var flags uint32
	if cfg.Options.DropFragments {
		flags |= flagDropFragments
	}
	if cfg.Options.DropMalformed {
		flags |= flagDropMalformed
	}
	if cfg.Options.NoTopTalkers {
		flags |= flagNoTalkers
	}
	if cfg.Options.SampleAll {
		flags |= flagSampleAll
	}
	if o := cfg.Options.SYNCookies; o == "on" || o == "auto" {
		flags |= flagSYNCookies
	}
	ne.PutUint32(b, flags)
	l := cfg.Limits
	p4, p6 := l.PrefixV4, l.PrefixV6
	if p4 == 0 {
		p4 = 32
	}
	if p6 == 0 {
		p6 = 64
	}
	if p4 < 1 || p4 > 32 {
		return nil, fmt.Errorf("firewall config: limits.prefix_v4 %d: 1 to 32", p4)
	}
	if p6 < 1 || p6 > 128 {
		return nil, fmt.Errorf("firewall config: limits.prefix_v6 %d: 1 to 128", p6)
	}
	b[4], b[5] = byte(p4), byte(p6)
	packets := func(off int, name string, r Rate) error {
		iv, tol, err := packetLimit(r)
		if err != nil {
			return fmt.Errorf("firewall config: limits.%s: %w", name, err)
		}
		ne.PutUint64(b[off:], iv)
		ne.PutUint64(b[off+8:], tol)
		return nil
	}
	if err := packets(8, "pps", l.PPS); err != nil {
		return nil, err
	}
	iv, tol, err := byteLimit(l.BPS)
	if err != nil {
		return nil, fmt.Errorf("firewall config: limits.bps: %w", err)
	}
	ne.PutUint64(b[24:], iv)
	ne.PutUint64(b[32:], tol)
	if err := packets(40, "syn", l.SYN); err != nil {
		return nil, err
	}
	amp := l.UDPAmplification
	for i, r := range []Rate{amp.DNS, amp.NTP, amp.SSDP, amp.Memcached} {
		name := []string{"dns", "ntp", "ssdp", "memcached"}[i]
		if err := packets(56+16*i, "udp_amplification."+name, r); err != nil {
			return nil, err
		}
	}
	ne.PutUint64(b[120:], l.AttackPPS)
	ne.PutUint64(b[128:], cfg.Options.SampleEvery)
	return b, nil
}

const (
	maxPPS   = 1_000_000_000 // one packet a nanosecond
	maxBPS   = 1 << 40       // a terabyte a second
	maxBurst = 1 << 40
)

// packetLimit is a GCRA in packets: the interval between packets, and the
// tolerance that lets Burst of them through back to back.
func packetLimit(r Rate) (interval, tolerance uint64, err error) {
	if r.Rate == 0 {
		if r.Burst != 0 {
			return 0, 0, fmt.Errorf("a burst without a rate")
		}
		return 0, 0, nil
	}
	if r.Rate > maxPPS || r.Burst > maxBurst {
		return 0, 0, fmt.Errorf("rate %d, burst %d: at most %d and %d", r.Rate, r.Burst, maxPPS, uint64(maxBurst))
	}
	burst := r.Burst
	if burst == 0 {
		burst = r.Rate
	}
	interval = 1_000_000_000 / r.Rate
	tolerance, err = mulDiv(burst-1, 1_000_000_000, r.Rate)
	return interval, tolerance, err
}

// byteLimit is a GCRA in bytes: the interval per byte in 1/65536 ns, and
// the tolerance for Burst bytes back to back, in ns.
func byteLimit(r Rate) (interval, tolerance uint64, err error) {
	if r.Rate == 0 {
		if r.Burst != 0 {
			return 0, 0, fmt.Errorf("a burst without a rate")
		}
		return 0, 0, nil
	}
	if r.Rate > maxBPS || r.Burst > maxBurst {
		return 0, 0, fmt.Errorf("rate %d, burst %d: at most %d and %d", r.Rate, r.Burst, uint64(maxBPS), uint64(maxBurst))
	}
	burst := r.Burst
	if burst == 0 {
		burst = r.Rate
	}
	if interval, err = mulDiv(1_000_000_000, 65536, r.Rate); err != nil {
		return 0, 0, err
	}
	tolerance, err = mulDiv(burst, 1_000_000_000, r.Rate)
	return interval, tolerance, err
}

// mulDiv is a*b/c without overflow in between.
func mulDiv(a, b, c uint64) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, fmt.Errorf("%d*%d/%d overflows", a, b, c)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q, nil
}
