package netenv

import "net/netip"

// SocketQuery is a socket lookup from a packet's point of view, as the
// bpf_sk_lookup_* helpers make it: Src is the packet's source (a
// connected socket's remote end), Dst its destination (the socket's local
// address).
type SocketQuery struct {
	// Proto is "tcp" or "udp".
	Proto    string
	Src, Dst netip.AddrPort
	// Dev is the device the packet arrived on: sockets bound to another
	// device do not match. 0 matches only unbound sockets.
	Dev int
}

// Socket returns the i-th socket (an index LookupSocket returned). Its
// Options map is the host's, to be read only.
func (h *Host) Socket(i int) Socket { return h.sockets[i] }

// NumSockets returns the number of sockets.
func (h *Host) NumSockets() int { return len(h.sockets) }

// LookupSocket finds the socket a packet belongs to and returns its index,
// or -1, as Linux's socket tables do (__inet_lookup, __inet6_lookup,
// __udp4_lib_lookup, __udp6_lib_lookup):
//
//   - TCP first looks for a connection (any state but listen and close)
//     with exactly the packet's addresses and ports, then for a listening
//     socket on the destination port: one bound to the destination address
//     before one bound to the unspecified address, and among those the best
//     scored: bound to the arrival device over unbound, an IPv4 socket over
//     a dual-stack IPv6 one.
//   - UDP scores every socket on the destination port, bound to the
//     destination address (else, if none, to the unspecified one): a
//     connected remote address and port and a bound device must match and
//     each adds to the score.
//
// IPv4 lookups also find IPv6 sockets that take IPv4 (not V6Only, or with
// IPv4-mapped addresses).
func (h *Host) LookupSocket(q SocketQuery) int {
	src, dst := q.Src.Addr().Unmap().WithZone(""), q.Dst.Addr().Unmap().WithZone("")
	if !src.IsValid() || !dst.IsValid() {
		return -1
	}
	q.Src = netip.AddrPortFrom(src, q.Src.Port())
	q.Dst = netip.AddrPortFrom(dst, q.Dst.Port())
	v4 := dst.Is4()
	if q.Proto == "tcp" {
		if i := h.established(q); i >= 0 {
			return i
		}
	}
	for _, exact := range []bool{true, false} {
		best, bestScore := -1, -1
		for i, s := range h.sockets {
			if s.Proto != q.Proto || s.Local.Port() != q.Dst.Port() {
				continue
			}
			if s.Proto == "tcp" && s.State != SockListen {
				continue
			}
			local := s.Local.Addr()
			sockV4 := local.Is4()
			switch {
			case v4 && local.Is4In6():
				local, sockV4 = local.Unmap(), false
			case v4 && local.Is6():
				if s.V6Only || !local.IsUnspecified() {
					continue
				}
				local = netip.IPv4Unspecified()
			case !v4 && local.Is4(), !v4 && local.Is4In6():
				continue
			}
			if exact && local != dst || !exact && !local.IsUnspecified() {
				continue
			}
			score := h.score(s, q, sockV4)
			if score > bestScore {
				best, bestScore = i, score
			}
		}
		if best >= 0 {
			return best
		}
	}
	return -1
}

// established finds a TCP socket in the established table.
func (h *Host) established(q SocketQuery) int {
	for i, s := range h.sockets {
		if s.Proto != "tcp" || s.State == SockListen || s.State == SockClose || !s.Remote.IsValid() {
			continue
		}
		if s.Local.Port() != q.Dst.Port() || s.Remote.Port() != q.Src.Port() {
			continue
		}
		l, r := s.Local.Addr(), s.Remote.Addr()
		if q.Dst.Addr().Is4() != (l.Is4() || l.Is4In6()) {
			continue
		}
		if l.Unmap() != q.Dst.Addr() || r.Unmap() != q.Src.Addr() {
			continue
		}
		if !h.boundDevMatches(s, q.Dev) {
			continue
		}
		return i
	}
	return -1
}

func (h *Host) boundDevMatches(s Socket, dev int) bool {
	if s.Dev == "" {
		return true
	}
	f, ok := h.InterfaceByName(s.Dev)
	return ok && f.Index == dev
}

// score is compute_score of the socket tables; -1 for no match.
func (h *Host) score(s Socket, q SocketQuery, sockV4 bool) int {
	if !h.boundDevMatches(s, q.Dev) {
		return -1
	}
	v4 := q.Dst.Addr().Is4()
	if s.Proto == "tcp" {
		score := 1
		if s.Dev != "" {
			score = 2
		}
		if v4 && sockV4 {
			score++
		}
		return score
	}
	score := 0
	if v4 && sockV4 {
		score = 2
	} else if v4 {
		score = 1
	}
	step := 1
	if v4 {
		step = 4
	}
	if s.Remote.IsValid() {
		if s.Remote.Addr().Unmap() != q.Src.Addr() && !s.Remote.Addr().IsUnspecified() {
			return -1
		}
		if !s.Remote.Addr().IsUnspecified() {
			score += step
		}
		if s.Remote.Port() != 0 {
			if s.Remote.Port() != q.Src.Port() {
				return -1
			}
			score += step
		}
	}
	if s.Dev != "" {
		score += step
	}
	return score
}
