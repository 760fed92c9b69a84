package netenv

import (
	"fmt"
	"net/netip"
	"slices"
)

// Tunnel is the tunnel metadata of one packet (struct ip_tunnel_info,
// include/net/ip_tunnels.h): what a packet received on a collect-metadata
// tunnel device (VXLAN, Geneve, GRE external) carries, and what
// bpf_skb_set_tunnel_key and bpf_skb_set_tunnel_opt attach for the tunnel
// device a packet is redirected to.
//
// Src and Dst are the outer header's addresses: on a received packet Src
// is the remote end, on a packet to transmit Dst is.
type Tunnel struct {
	// ID is the tunnel key: the VNI of VXLAN and Geneve, the GRE key.
	ID      uint64      `json:"id,omitempty"`
	Src     netip.Addr  `json:"src,omitzero"`
	Dst     netip.Addr  `json:"dst,omitzero"`
	TOS     uint8       `json:"tos,omitempty"`
	TTL     uint8       `json:"ttl,omitempty"`
	Label   uint32      `json:"label,omitempty"` // the IPv6 flow label
	SrcPort uint16      `json:"sport,omitempty"` // the outer UDP ports
	DstPort uint16      `json:"dport,omitempty"`
	Flags   TunnelFlags `json:"flags,omitempty"`
	// Options are the Geneve, VXLAN or ERSPAN options.
	Options []byte `json:"options,omitempty"`
	// TX marks metadata set for transmission (IP_TUNNEL_INFO_TX), as
	// bpf_skb_set_tunnel_key sets it; received metadata has it clear.
	TX bool `json:"tx,omitempty"`
	// IPv6 says the outer header is IPv6 (IP_TUNNEL_INFO_IPV6); when the
	// addresses are set it must agree with them.
	IPv6 bool `json:"ipv6,omitempty"`
}

// TunnelFlags are the tunnel flags (TUNNEL_* in the order of
// IP_TUNNEL_*_BIT, include/net/ip_tunnels.h), as their 16-bit big-endian
// form bpf_skb_get_tunnel_key reports with BPF_F_TUNINFO_FLAGS holds them.
type TunnelFlags uint16

// Tunnel flags.
const (
	TunnelCsum         TunnelFlags = 0x0001
	TunnelRouting      TunnelFlags = 0x0002
	TunnelKey          TunnelFlags = 0x0004
	TunnelSeq          TunnelFlags = 0x0008
	TunnelStrict       TunnelFlags = 0x0010
	TunnelRec          TunnelFlags = 0x0020
	TunnelVersion      TunnelFlags = 0x0040
	TunnelNoKey        TunnelFlags = 0x0080
	TunnelDontFragment TunnelFlags = 0x0100
	TunnelOAM          TunnelFlags = 0x0200
	TunnelCritOpt      TunnelFlags = 0x0400
	TunnelGeneveOpt    TunnelFlags = 0x0800
	TunnelVXLANOpt     TunnelFlags = 0x1000
	TunnelNoCache      TunnelFlags = 0x2000
	TunnelERSPANOpt    TunnelFlags = 0x4000
	TunnelGTPOpt       TunnelFlags = 0x8000
	// TunnelOptionsPresent are the flags that say options are present.
	TunnelOptionsPresent = TunnelGeneveOpt | TunnelVXLANOpt | TunnelERSPANOpt | TunnelGTPOpt
)

// MaxTunnelOptions is IP_TUNNEL_OPTS_MAX, the most option bytes a packet's
// metadata holds.
const MaxTunnelOptions = 255

// Check reports whether the metadata could be a packet's: addresses of
// one family that agrees with IPv6, options within MaxTunnelOptions.
func (t *Tunnel) Check() error {
	for _, a := range []netip.Addr{t.Src, t.Dst} {
		if a.IsValid() && (a.Is4In6() || a.Is6() != t.IPv6) {
			return fmt.Errorf("netenv: tunnel address %s does not match ipv6=%v", a, t.IPv6)
		}
	}
	if len(t.Options) > MaxTunnelOptions {
		return fmt.Errorf("netenv: %d bytes of tunnel options, at most %d", len(t.Options), MaxTunnelOptions)
	}
	return nil
}

// Clone returns a copy of t that shares no memory with it.
func (t *Tunnel) Clone() *Tunnel {
	if t == nil {
		return nil
	}
	c := *t
	c.Options = slices.Clone(t.Options)
	return &c
}
