package progtype

import "fmt"

// The contexts of flow_dissector and sk_lookup programs.

// Offsets of struct bpf_flow_keys (include/uapi/linux/bpf.h), what a flow
// dissector's __sk_buff.flow_keys points to.
const (
	fkNhoff      = 0  // __u16
	fkThoff      = 2  // __u16
	fkAddrProto  = 4  // __u16
	fkIsFrag     = 6  // __u8
	fkIsFirstFrg = 7  // __u8
	fkIsEncap    = 8  // __u8
	fkIPProto    = 9  // __u8
	fkNProto     = 10 // __be16
	fkSport      = 12 // __be16
	fkDport      = 14 // __be16
	fkAddrs      = 16 // ipv4_src, ipv4_dst or ipv6_src[4], ipv6_dst[4]
	fkFlags      = 48
	fkFlowLabel  = 52
	// FlowKeysSize is sizeof(struct bpf_flow_keys).
	FlowKeysSize = 56
)

// Flow dissector flags (include/uapi/linux/bpf.h), given in ctx_in's
// bpf_flow_keys.flags.
const (
	FlowDissectorFParseFirstFrag = 1 << 0 // BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG
	FlowDissectorFStopAtFlowLbl  = 1 << 1 // BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL
	FlowDissectorFStopAtEncap    = 1 << 2 // BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP
)

// flowDissectorRules is flow_dissector_is_valid_access (net/core/filter.c):
// a flow dissector reads only data and data_end (4-byte loads, not
// sign-extending) and the flow_keys pointer (an 8-byte load) of its
// __sk_buff, and writes nothing.
func flowDissectorRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= skbSize {
		return conversion{}, fmt.Sprintf("offset %d is outside __sk_buff (%d bytes)", off, skbSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	if a.write {
		return conversion{}, "flow dissectors may not write their __sk_buff (they write flow_keys)"
	}
	switch {
	case inRange(off, skbData, 4), inRange(off, skbDataEnd, 4):
		if a.signExt || size != 4 {
			return conversion{}, fmt.Sprintf("%s load; data and data_end are read with 4-byte loads, not sign-extending", sized(size))
		}
		return conversion{off: skbLayout.Field(off).Runtime, size: 8}, ""
	case inRange(off, skbFlowKeys, 8):
		if size != 8 {
			return conversion{}, fmt.Sprintf("%s load; flow_keys is read with an 8-byte load", sized(size))
		}
		return conversion{off: rtSkbFlowKeys}, ""
	}
	return conversion{}, "flow dissectors may read only data, data_end and flow_keys (flow_dissector_is_valid_access)"
}

// UAPI offsets of struct bpf_sk_lookup.
const (
	slkSk             = 0 // union with cookie
	slkFamily         = 8
	slkProtocol       = 12
	slkRemoteIP4      = 16
	slkRemoteIP6      = 20 // [4]
	slkRemotePort     = 36 // __be16, then 2 bytes of padding
	slkLocalIP4       = 40
	slkLocalIP6       = 44 // [4]
	slkLocalPort      = 60 // host order
	slkIngressIfindex = 64
	// SkLookupSize is sizeof(struct bpf_sk_lookup).
	SkLookupSize = 72
)

// skLookupLayout is struct bpf_sk_lookup, read-only, in its UAPI layout.
var skLookupLayout = uapiLayout("bpf_sk_lookup", SkLookupSize, []Field{
	{Name: "sk", Off: slkSk, Size: 8},
	{Name: "family", Off: slkFamily, Size: 4},
	{Name: "protocol", Off: slkProtocol, Size: 4},
	{Name: "remote_ip4", Off: slkRemoteIP4, Size: 4},
	{Name: "remote_ip6", Kind: Array, Off: slkRemoteIP6, Size: 16, Elem: 4},
	{Name: "remote_port", Off: slkRemotePort, Size: 4},
	{Name: "local_ip4", Off: slkLocalIP4, Size: 4},
	{Name: "local_ip6", Kind: Array, Off: slkLocalIP6, Size: 16, Elem: 4},
	{Name: "local_port", Off: slkLocalPort, Size: 4},
	{Name: "ingress_ifindex", Off: slkIngressIfindex, Size: 4},
}, nil)

// skLookupTargetSize is the size of the bpf_sk_lookup_kern member a field
// is read from, where narrower than 4 bytes.
var skLookupTargetSize = map[int]int{slkFamily: 2, slkProtocol: 2, slkLocalPort: 2}

// skLookupRules is sk_lookup_is_valid_access (net/core/filter.c): reads
// only; sk with an 8-byte load; the other fields with loads of any size
// within them (remote_port's 2 bytes, or a 4-byte load of it and its
// padding).
func skLookupRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= SkLookupSize {
		return conversion{}, fmt.Sprintf("offset %d is outside bpf_sk_lookup (%d bytes)", off, SkLookupSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	if a.write {
		return conversion{}, "bpf_sk_lookup is read-only"
	}
	switch {
	case inRange(off, slkSk, 8):
		if size != 8 {
			return conversion{}, fmt.Sprintf("%s load; sk is read with an 8-byte load", sized(size))
		}
	case inRange(off, slkRemotePort, 2):
		if size == 4 {
			return conversion{off: off}, ""
		}
		if size > 2 {
			return conversion{}, fmt.Sprintf("%s load of the 2-byte remote_port", sized(size))
		}
	case inRange(off, slkRemotePort+2, 2):
		if size > 2 {
			return conversion{}, fmt.Sprintf("%s load of remote_port's 2 bytes of padding", sized(size))
		}
	default:
		f := skLookupLayout.Field(off)
		if f == nil {
			return conversion{}, "the bytes after ingress_ifindex are padding"
		}
		if size > 4 {
			return conversion{}, fmt.Sprintf("%s load of a 4-byte field", sized(size))
		}
		if t := skLookupTargetSize[f.Off]; t != 0 && size >= t {
			return conversion{off: f.Off}, ""
		}
	}
	return conversion{off: off}, ""
}
