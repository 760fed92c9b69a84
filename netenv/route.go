package netenv

import (
	"net/netip"
	"sort"
)

// RouteQuery is a flow to route, as struct flowi4 and flowi6 describe
// one to Linux's FIB (include/net/flow.h).
type RouteQuery struct {
	// Dst and Src are the packet's addresses; Src may be unspecified.
	Dst, Src netip.Addr
	// IIf is the input device: the device a forwarded packet came in on,
	// or the loopback device (1) for locally generated packets, as Linux
	// sets it for output lookups.
	IIf int
	// OIf, when not 0, restricts IPv4 routes to those through that
	// device; for IPv6 it makes routes through it preferred, as
	// fib6_table_lookup does without RT6_LOOKUP_F_IFACE.
	OIf int
	// Mark is the packet mark policy routing rules match (fwmark).
	Mark uint32
	// TOS is the IPv4 TOS byte; only its DSCP bits are matched.
	TOS uint8
	// Proto, SPort and DPort are the transport protocol and ports.
	Proto        uint8
	SPort, DPort uint16
	// Table, when not 0, looks in that table alone, bypassing the rules
	// (fib_table_lookup, as BPF_FIB_LOOKUP_DIRECT asks).
	Table uint32
}

// RouteResult is what a FIB lookup found.
type RouteResult struct {
	// Type is the type of the route found, or of the rule that decided
	// (blackhole, unreachable, prohibit); "" when no route matches (Linux
	// returns -ENETUNREACH for IPv4 and its null entry for IPv6).
	Type RouteType
	// Route is the matching route (zero when a rule decided).
	Route Route
	// Dev is the ifindex of the route's device.
	Dev int
	// NoTable is set when a direct lookup named a table that does not
	// exist.
	NoTable bool
	// route is the internal form, for MTU and source selection.
	r *route
}

// dscpMask is INET_DSCP_MASK: the TOS bits IPv4 routing looks at.
const dscpMask = 0xfc

// LookupRoute routes a flow as Linux's FIB does: through the policy rules
// (fib_rules_lookup) or, with q.Table, in one table; in each table the
// longest matching prefix, then (IPv4) the highest TOS and lowest metric
// among routes whose device is up and, with q.OIf, is that device, or
// (IPv6) the lowest metric, preferring routes through q.OIf. Blackhole,
// unreachable and prohibit routes end the lookup with their type, throw
// routes send it on to the next rule. Rules with those actions end an
// IPv4 lookup with their type and an IPv6 one without a route, as
// fib6_rule_action_alt does. Multipath routes are not modelled.
func (h *Host) LookupRoute(q RouteQuery) RouteResult {
	if !q.Dst.IsValid() {
		return RouteResult{}
	}
	q.Dst = q.Dst.Unmap().WithZone("")
	fam := familyOf(q.Dst) / 6
	if q.Table != 0 {
		if !h.tables[fam][q.Table] {
			return RouteResult{NoTable: true}
		}
		res, _ := h.lookupTable(fam, q.Table, q)
		return res
	}
	if fam == 0 && !h.custom4 {
		// fib_lookup without custom rules: the main table, which holds
		// the local routes too (the two are merged), then default.
		for _, t := range []uint32{TableMain, TableDefault} {
			if res, ok := h.lookupTable(fam, t, q); ok {
				return res
			}
		}
		return RouteResult{}
	}
	for _, rule := range h.rules[fam] {
		if !h.ruleMatches(&rule, q) {
			continue
		}
		switch rule.Action {
		case RuleLookup:
			if !h.tables[fam][rule.Table] {
				continue
			}
			if res, ok := h.lookupTable(fam, rule.Table, q); ok {
				return res
			}
		case RuleBlackhole, RuleUnreachable, RuleProhibit:
			if fam == 1 {
				// fib6_rule_action_alt answers with the null entry:
				// no route, whatever the action.
				return RouteResult{}
			}
		}
		switch rule.Action {
		case RuleBlackhole:
			return RouteResult{Type: RouteBlackhole}
		case RuleUnreachable:
			return RouteResult{Type: RouteUnreachable}
		case RuleProhibit:
			return RouteResult{Type: RouteProhibit}
		}
	}
	return RouteResult{}
}

// ruleMatches is fib_rule_match with fib4_rule_match or fib6_rule_match.
func (h *Host) ruleMatches(r *Rule, q RouteQuery) bool {
	m := func() bool {
		if r.IIf != "" {
			f, ok := h.byName[r.IIf]
			if !ok || h.ifaces[f].Index != q.IIf {
				return false
			}
		}
		if r.OIf != "" {
			f, ok := h.byName[r.OIf]
			if !ok || h.ifaces[f].Index != q.OIf {
				return false
			}
		}
		if (r.Mark^q.Mark)&r.Mask != 0 {
			return false
		}
		if r.Src.IsValid() && (!q.Src.IsValid() || !r.Src.Contains(q.Src.Unmap())) {
			return false
		}
		if r.Dst.IsValid() && !r.Dst.Contains(q.Dst) {
			return false
		}
		if r.TOS != 0 && r.TOS != q.TOS&dscpMask {
			return false
		}
		if r.IPProto != 0 && r.IPProto != q.Proto {
			return false
		}
		return true
	}()
	return m != r.Invert
}

// lookupTable is fib_table_lookup (IPv4) or fib6_table_lookup (IPv6). It
// reports false when the table holds no route for the flow (-EAGAIN,
// also for a throw route), so that the rules go on.
func (h *Host) lookupTable(fam int, table uint32, q RouteQuery) (RouteResult, bool) {
	merged := fam == 0 && table == TableMain && !h.custom4
	var cands []*route
	for i := range h.routes {
		r := &h.routes[i]
		if familyOf(r.Dst.Addr())/6 != fam || !r.Dst.Contains(q.Dst) {
			continue
		}
		if r.Table == table || merged && r.Table == TableLocal {
			cands = append(cands, r)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.Dst.Bits() != b.Dst.Bits() {
			return a.Dst.Bits() > b.Dst.Bits()
		}
		if fam == 0 && a.TOS != b.TOS {
			return a.TOS > b.TOS
		}
		return a.Metric < b.Metric
	})
	for len(cands) > 0 {
		// The routes of the longest prefix left.
		n := 1
		for n < len(cands) && cands[n].Dst.Bits() == cands[0].Dst.Bits() {
			n++
		}
		node := cands[:n]
		cands = cands[n:]
		var found *route
		if fam == 0 {
			found = h.select4(node, q)
		} else {
			found = h.select6(node, q)
		}
		if found == nil {
			continue
		}
		if found.Type == RouteThrow {
			return RouteResult{}, false
		}
		return RouteResult{Type: found.Type, Route: found.Route, Dev: found.dev, r: found}, true
	}
	return RouteResult{}, false
}

// select4 picks the route of one prefix as fib_table_lookup walks its
// aliases: the first whose TOS matches and, if it is not an error route,
// whose device is up and matches q.OIf.
func (h *Host) select4(node []*route, q RouteQuery) *route {
	for _, r := range node {
		if r.TOS != 0 && r.TOS != q.TOS&dscpMask {
			continue
		}
		switch r.Type {
		case RouteBlackhole, RouteUnreachable, RouteProhibit, RouteThrow:
			return r
		}
		if !r.live || q.OIf != 0 && r.dev != q.OIf {
			continue
		}
		return r
	}
	return nil
}

// select6 picks the route of one prefix as rt6_select does: the group of
// the lowest metric with a usable route, in it the first route through
// q.OIf, or else the first usable one.
func (h *Host) select6(node []*route, q RouteQuery) *route {
	for len(node) > 0 {
		n := 1
		for n < len(node) && node[n].Metric == node[0].Metric {
			n++
		}
		var first *route
		for _, r := range node[:n] {
			if !r.live {
				continue
			}
			if q.OIf == 0 || r.dev == q.OIf {
				return r
			}
			if first == nil {
				first = r
			}
		}
		if first != nil {
			return first
		}
		node = node[n:]
	}
	return nil
}

// Limits of the MTU of a path (include/net/ip.h, include/net/ipv6.h).
const (
	ipMaxMTU   = 0xffff
	ip6MaxMTU  = 0xffff + 40
	ipv6MinMTU = 1280
)

// MTU returns the MTU of a unicast route found by LookupRoute, as
// ip_mtu_from_fib_result and ip6_mtu_from_fib6 compute it: the route's
// MTU metric when it is locked, else the device's (for IPv6 at least
// 1280), capped at IP_MAX_MTU or IP6_MAX_MTU. Path MTU exceptions learnt
// from ICMP are not modelled.
func (h *Host) MTU(res RouteResult) uint32 {
	if res.r == nil {
		return 0
	}
	v6 := res.Route.Dst.Addr().Is6()
	if res.Route.MTULock && res.Route.MTU != 0 {
		if v6 {
			return res.Route.MTU
		}
		return min(res.Route.MTU, ipMaxMTU)
	}
	f, ok := h.Interface(res.Dev)
	if !ok {
		return 0
	}
	mtu := uint32(f.MTU)
	if v6 {
		return min(max(mtu, ipv6MinMTU), ip6MaxMTU)
	}
	return min(mtu, ipMaxMTU)
}

// PrefSrc returns the source address Linux prefers for an IPv4 route
// found by LookupRoute (fib_result_prefsrc): the route's src, or an
// address of the route's device of a scope the route allows, preferring
// one on the gateway's (or destination's) subnet, or else a suitable
// address of any device (inet_select_addr). It returns the zero Addr
// when there is none.
func (h *Host) PrefSrc(res RouteResult) netip.Addr {
	r := res.r
	if r == nil || r.Dst.Addr().Is6() {
		return netip.Addr{}
	}
	if r.Src.IsValid() {
		return r.Src
	}
	var near netip.Addr
	if r.Via.IsValid() && r.Via.Is4() {
		near = r.Via
	}
	return h.selectAddr4(r.dev, near, r.scope)
}

// addrScope4 is the scope Linux gives an IPv4 address: host for
// 127.0.0.0/8, universe otherwise.
func addrScope4(a netip.Addr) uint8 {
	if a.As4()[0] == 127 {
		return scopeHost
	}
	return scopeUniverse
}

// selectAddr4 is inet_select_addr.
func (h *Host) selectAddr4(dev int, dst netip.Addr, scope uint8) netip.Addr {
	if i, ok := h.byIndex[dev]; ok {
		var addr netip.Addr
		for n, p := range h.ifaces[i].Addrs {
			if !p.Addr().Is4() || isSecondary(h.ifaces[i].Addrs, n) || addrScope4(p.Addr()) > scope {
				continue
			}
			if !dst.IsValid() || p.Masked().Contains(dst) {
				return p.Addr()
			}
			if !addr.IsValid() {
				addr = p.Addr()
			}
		}
		if addr.IsValid() {
			return addr
		}
	}
	for _, f := range h.ifaces {
		for n, p := range f.Addrs {
			s := addrScope4(p.Addr())
			if p.Addr().Is4() && !isSecondary(f.Addrs, n) && s != scopeLink && s != scopeHost && s <= scope {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

// isSecondary reports whether the n-th address of a device is secondary:
// an earlier IPv4 address has the same subnet.
func isSecondary(addrs []netip.Prefix, n int) bool {
	p := addrs[n]
	for _, q := range addrs[:n] {
		if q.Addr().Is4() && q.Bits() == p.Bits() && q.Masked() == p.Masked() {
			return true
		}
	}
	return false
}

// SourceAddr6 returns the source address Linux picks for an IPv6
// destination leaving through device dev (ipv6_dev_get_saddr, the rules of
// RFC 6724 that apply without address lifetimes or policy labels: the
// same address, an appropriate scope, the outgoing device, the longest
// matching prefix), or the route's preferred source if it has one. For a
// link-local or multicast destination only dev's addresses are
// candidates. It reports false when there is no candidate.
func (h *Host) SourceAddr6(res RouteResult, dst netip.Addr) (netip.Addr, bool) {
	if res.r != nil && res.r.Src.IsValid() {
		return res.r.Src, true
	}
	dev := res.Dev
	dst = dst.WithZone("")
	dstScope := scope6(dst)
	onlyDev := dst.IsMulticast() || dstScope <= scope6LinkLocal
	var best netip.Addr
	var bestDev bool
	for _, f := range h.ifaces {
		if onlyDev && f.Index != dev || f.Down {
			continue
		}
		for _, p := range f.Addrs {
			a := p.Addr()
			if !a.Is6() {
				continue
			}
			if a == dst {
				return a, true
			}
			if !best.IsValid() || better6(a, f.Index == dev, best, bestDev, dst, dstScope) {
				best, bestDev = a, f.Index == dev
			}
		}
	}
	return best, best.IsValid()
}

// IPv6 address scopes (RFC 4291), as ipv6_addr_scope numbers them.
const (
	scope6Node      = 0x1
	scope6LinkLocal = 0x2
	scope6Global    = 0xe
)

func scope6(a netip.Addr) int {
	switch {
	case a.IsLoopback():
		return scope6Node
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return scope6LinkLocal
	case a.IsMulticast():
		return int(a.As16()[1] & 0xf)
	}
	return scope6Global
}

// better6 reports whether candidate a beats the best so far b (RFC 6724
// section 5, rules 2, 5 and 8).
func better6(a netip.Addr, aDev bool, b netip.Addr, bDev bool, dst netip.Addr, ds int) bool {
	sa, sb := scope6(a), scope6(b)
	if sa != sb {
		if sa < sb {
			return sa >= ds
		}
		return sb < ds
	}
	if aDev != bDev {
		return aDev
	}
	return commonPrefix(a, dst) > commonPrefix(b, dst)
}

func commonPrefix(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		break
	}
	return n
}

// Neighbour returns the neighbour entry of ip on device dev, as
// __ipv4_neigh_lookup_noref and __ipv6_neigh_lookup_noref find it (an
// IPv4 lookup on the loopback device uses the key 0.0.0.0).
func (h *Host) Neighbour(dev int, ip netip.Addr) (Neighbour, bool) {
	ip = ip.Unmap().WithZone("")
	if f, ok := h.Interface(dev); ok && f.Kind == KindLoopback && ip.Is4() {
		ip = netip.IPv4Unspecified()
	}
	i, ok := h.neigh[neighKey{dev, ip}]
	if !ok {
		return Neighbour{}, false
	}
	return h.cfg.Neighbours[i], true
}
