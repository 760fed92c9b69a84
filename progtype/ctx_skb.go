package progtype

import "fmt"

// UAPI offsets of struct __sk_buff (include/uapi/linux/bpf.h).
const (
	skbLen            = 0
	skbPktType        = 4
	skbMark           = 8
	skbQueueMapping   = 12
	skbProtocol       = 16
	skbVlanPresent    = 20
	skbVlanTCI        = 24
	skbVlanProto      = 28
	skbPriority       = 32
	skbIngressIfindex = 36
	skbIfindex        = 40
	skbTCIndex        = 44
	skbCB             = 48 // cb[5]
	skbHash           = 68
	skbTCClassid      = 72
	skbData           = 76
	skbDataEnd        = 80
	skbNapiID         = 84
	skbFamily         = 88
	skbRemoteIP4      = 92
	skbLocalIP4       = 96
	skbRemoteIP6      = 100 // [4]
	skbLocalIP6       = 116 // [4]
	skbRemotePort     = 132
	skbLocalPort      = 136
	skbDataMeta       = 140
	skbFlowKeys       = 144 // pointer, 8 bytes
	skbTstamp         = 152
	skbWireLen        = 160
	skbGSOSegs        = 164
	skbSk             = 168 // pointer, 8 bytes
	skbGSOSize        = 176
	skbTstampType     = 180 // u8, then 3 bytes of padding
	skbHwtstamp       = 184
	skbSize           = 192

	cbSize = 20 // QDISC_CB_PRIV_LEN: the bytes of cb[5]
)

// skbLayout is struct __sk_buff. Its runtime layout puts the pointers and
// read-only fields first and the fields some program type may write
// (tc_cls_act_is_valid_access, the widest set) last:
//
//	  0 data        8 data_end   16 data_meta  24 flow_keys
//	 32 sk         40 hwtstamp
//	 48 len        52 pkt_type   56 protocol   60 vlan_present
//	 64 vlan_tci   68 vlan_proto 72 ingress_ifindex  76 ifindex
//	 80 hash       84 napi_id    88 family     92 remote_ip4
//	 96 local_ip4 100 remote_ip6[4]  116 local_ip6[4]
//	132 remote_port 136 local_port 140 wire_len 144 gso_segs
//	148 gso_size  152 tstamp_type (a u32 slot)
//	---- writable from 160 ----
//	160 tstamp    168 mark      172 priority  176 queue_mapping
//	180 tc_index  184 tc_classid 188 cb[5]    (208 bytes)
//
// Fields whose kernel storage is narrower (protocol, vlan_tci, tc_index,
// tc_classid, queue_mapping are u16 in struct sk_buff; pkt_type is 3 bits)
// are u32 slots whose high bytes stay zero, so narrow loads of any byte give
// what the kernel's load-shift-mask sequence gives.
var skbLayout = func() *Layout {
	b := newLayout("__sk_buff", skbSize)
	for _, f := range []Field{
		{Name: "data", Kind: Pointer, Off: skbData, Size: 4},
		{Name: "data_end", Kind: Pointer, Off: skbDataEnd, Size: 4},
		{Name: "data_meta", Kind: Pointer, Off: skbDataMeta, Size: 4},
		{Name: "flow_keys", Kind: Pointer, Off: skbFlowKeys, Size: 8},
		{Name: "sk", Kind: Pointer, Off: skbSk, Size: 8},
		{Name: "hwtstamp", Off: skbHwtstamp, Size: 8},
		{Name: "len", Off: skbLen, Size: 4},
		{Name: "pkt_type", Off: skbPktType, Size: 4},
		{Name: "protocol", Off: skbProtocol, Size: 4},
		{Name: "vlan_present", Off: skbVlanPresent, Size: 4},
		{Name: "vlan_tci", Off: skbVlanTCI, Size: 4},
		{Name: "vlan_proto", Off: skbVlanProto, Size: 4},
		{Name: "ingress_ifindex", Off: skbIngressIfindex, Size: 4},
		{Name: "ifindex", Off: skbIfindex, Size: 4},
		{Name: "hash", Off: skbHash, Size: 4},
		{Name: "napi_id", Off: skbNapiID, Size: 4},
		{Name: "family", Off: skbFamily, Size: 4},
		{Name: "remote_ip4", Off: skbRemoteIP4, Size: 4},
		{Name: "local_ip4", Off: skbLocalIP4, Size: 4},
		{Name: "remote_ip6", Kind: Array, Off: skbRemoteIP6, Size: 16, Elem: 4},
		{Name: "local_ip6", Kind: Array, Off: skbLocalIP6, Size: 16, Elem: 4},
		{Name: "remote_port", Off: skbRemotePort, Size: 4},
		{Name: "local_port", Off: skbLocalPort, Size: 4},
		{Name: "wire_len", Off: skbWireLen, Size: 4},
		{Name: "gso_segs", Off: skbGSOSegs, Size: 4},
		{Name: "gso_size", Off: skbGSOSize, Size: 4},
		{Name: "tstamp_type", Off: skbTstampType, Size: 1},
	} {
		b.place(f, false)
	}
	b.align(8)
	for _, f := range []Field{
		{Name: "tstamp", Off: skbTstamp, Size: 8},
		{Name: "mark", Off: skbMark, Size: 4},
		{Name: "priority", Off: skbPriority, Size: 4},
		{Name: "queue_mapping", Off: skbQueueMapping, Size: 4},
		{Name: "tc_index", Off: skbTCIndex, Size: 4},
		{Name: "tc_classid", Off: skbTCClassid, Size: 4},
		{Name: "cb", Kind: Array, Off: skbCB, Size: cbSize, Elem: 4},
	} {
		b.place(f, true)
	}
	return b.done()
}()

// skbTargetSize is the size of the sk_buff member a __sk_buff field is read
// from (bpf_convert_ctx_access's target_size), where it is narrower than
// the field's 4 bytes.
var skbTargetSize = map[int]int{
	skbPktType: 1, skbQueueMapping: 2, skbProtocol: 2, skbVlanProto: 2, skbVlanTCI: 2,
	skbTCIndex: 2, skbTCClassid: 2, skbGSOSegs: 2, skbGSOSize: 2, skbFamily: 2,
	skbRemotePort: 2, skbLocalPort: 2,
}

// skbRuntime returns the runtime offset of the __sk_buff field at UAPI
// offset off (the start of a field).
func skbRuntime(off int) int { return skbLayout.Field(off).Runtime }

// Runtime offsets of the __sk_buff shadow, for the run state and helpers.
var (
	rtSkbData        = skbRuntime(skbData)
	rtSkbDataEnd     = skbRuntime(skbDataEnd)
	rtSkbDataMeta    = skbRuntime(skbDataMeta)
	rtSkbFlowKeys    = skbRuntime(skbFlowKeys)
	rtSkbSk          = skbRuntime(skbSk)
	rtSkbHwtstamp    = skbRuntime(skbHwtstamp)
	rtSkbLen         = skbRuntime(skbLen)
	rtSkbPktType     = skbRuntime(skbPktType)
	rtSkbProtocol    = skbRuntime(skbProtocol)
	rtSkbVlanPresent = skbRuntime(skbVlanPresent)
	rtSkbVlanTCI     = skbRuntime(skbVlanTCI)
	rtSkbVlanProto   = skbRuntime(skbVlanProto)
	rtSkbIngress     = skbRuntime(skbIngressIfindex)
	rtSkbIfindex     = skbRuntime(skbIfindex)
	rtSkbHash        = skbRuntime(skbHash)
	rtSkbFamily      = skbRuntime(skbFamily)
	rtSkbRemoteIP4   = skbRuntime(skbRemoteIP4)
	rtSkbLocalIP4    = skbRuntime(skbLocalIP4)
	rtSkbRemoteIP6   = skbRuntime(skbRemoteIP6)
	rtSkbLocalIP6    = skbRuntime(skbLocalIP6)
	rtSkbRemotePort  = skbRuntime(skbRemotePort)
	rtSkbLocalPort   = skbRuntime(skbLocalPort)
	rtSkbWireLen     = skbRuntime(skbWireLen)
	rtSkbGSOSegs     = skbRuntime(skbGSOSegs)
	rtSkbGSOSize     = skbRuntime(skbGSOSize)
	rtSkbTstamp      = skbRuntime(skbTstamp)
	rtSkbTstampType  = skbRuntime(skbTstampType)
	rtSkbMark        = skbRuntime(skbMark)
	rtSkbPriority    = skbRuntime(skbPriority)
	rtSkbQueueMap    = skbRuntime(skbQueueMapping)
	rtSkbTCIndex     = skbRuntime(skbTCIndex)
	rtSkbTCClassid   = skbRuntime(skbTCClassid)
	rtSkbCB          = skbRuntime(skbCB)
)

// inRange reports whether off lies in the UAPI member [start, start+size).
func inRange(off, start, size int) bool { return off >= start && off < start+size }

// skbTypeRules applies the program type's own is_valid_access before the
// common one (net/core/filter.c: sk_filter_is_valid_access,
// tc_cls_act_is_valid_access, cg_skb_is_valid_access, lwt_is_valid_access). It returns a reason
// to refuse, "" to go on to the common checks, or done for an access it has
// accepted itself.
func skbTypeRules(t Type, a ctxAccess) (reason string, done bool) {
	off := a.off
	switch t {
	case SocketFilter:
		switch {
		case inRange(off, skbTCClassid, 4), inRange(off, skbData, 4), inRange(off, skbDataMeta, 4),
			inRange(off, skbDataEnd, 4), inRange(off, skbFamily, skbLocalPort+4-skbFamily),
			inRange(off, skbTstamp, 8), inRange(off, skbWireLen, 4), inRange(off, skbHwtstamp, 8):
			return "socket filters may not access this field (sk_filter_is_valid_access)", false
		}
		if a.write && !inRange(off, skbCB, cbSize) {
			return "socket filters may write only cb[0..4]", false
		}
	case CgroupSKB:
		switch {
		case inRange(off, skbTCClassid, 4), inRange(off, skbDataMeta, 4), inRange(off, skbWireLen, 4):
			return "cgroup_skb programs may not access this field (cg_skb_is_valid_access)", false
		}
		if a.write {
			switch {
			case inRange(off, skbMark, 4), inRange(off, skbPriority, 4), inRange(off, skbCB, cbSize), inRange(off, skbTstamp, 8):
			default:
				return "the field is read-only (cgroup_skb programs may write mark, priority, cb[0..4] and tstamp)", false
			}
		}
	case LWTIn, LWTOut, LWTXmit, LWTSeg6Local:
		switch {
		case inRange(off, skbTCClassid, 4), inRange(off, skbFamily, skbLocalPort+4-skbFamily),
			inRange(off, skbDataMeta, 4), inRange(off, skbTstamp, 8), inRange(off, skbWireLen, 4),
			inRange(off, skbHwtstamp, 8):
			return "lwt programs may not access this field (lwt_is_valid_access)", false
		}
		if a.write && !inRange(off, skbMark, 4) && !inRange(off, skbPriority, 4) && !inRange(off, skbCB, cbSize) {
			return "the field is read-only (lwt programs may write mark, priority and cb[0..4])", false
		}
	case SchedCLS, SchedACT:
		if a.write {
			switch {
			case inRange(off, skbMark, 4), inRange(off, skbTCIndex, 4), inRange(off, skbPriority, 4),
				inRange(off, skbTCClassid, 4), inRange(off, skbCB, cbSize), inRange(off, skbTstamp, 8),
				inRange(off, skbQueueMapping, 4):
			default:
				return "the field is read-only (tc programs may write mark, tc_index, priority, tc_classid, cb[0..4], tstamp and queue_mapping)", false
			}
		}
		if inRange(off, skbFamily, skbLocalPort+4-skbFamily) {
			return "tc programs may not access the socket fields family..local_port (tc_cls_act_is_valid_access)", false
		}
		if off == skbTstampType {
			if a.size != 1 {
				return fmt.Sprintf("%s access; tstamp_type is read with 1-byte loads", sized(a.size)), false
			}
			return "", true
		}
	}
	return "", false
}

// skbRules is bpf_skb_is_valid_access (net/core/filter.c) after the type's
// own rules, and the rewrite of bpf_convert_ctx_access onto the shadow
// struct.
func skbRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= skbSize {
		return conversion{}, fmt.Sprintf("offset %d is outside __sk_buff (%d bytes)", off, skbSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	reason, done := skbTypeRules(k.typ, a)
	if reason != "" {
		return conversion{}, reason
	}
	f := skbLayout.Field(off)
	if !done {
		switch {
		case inRange(off, skbCB, cbSize):
			if off+size > skbCB+cbSize {
				return conversion{}, fmt.Sprintf("%s access at offset %d runs past cb[4]", sized(size), off)
			}
		case inRange(off, skbData, 4), inRange(off, skbDataMeta, 4), inRange(off, skbDataEnd, 4):
			if a.signExt {
				return conversion{}, "pointer fields may not be loaded sign-extending"
			}
			if size != 4 || off != f.Off {
				return conversion{}, fmt.Sprintf("%s load at offset %d; pointer fields are read whole, with 4-byte loads", sized(size), off)
			}
		case inRange(off, skbRemoteIP6, 16), inRange(off, skbLocalIP6, 16), inRange(off, skbRemoteIP4, 4), inRange(off, skbLocalIP4, 4):
			if size != 4 {
				return conversion{}, fmt.Sprintf("%s access; addresses are read with 4-byte loads", sized(size))
			}
		case inRange(off, skbFlowKeys, 8):
			return conversion{}, "flow_keys is only for flow dissector programs"
		case inRange(off, skbHwtstamp, 8):
			if a.write {
				return conversion{}, "the field is read-only"
			}
			if size != 8 {
				return conversion{}, fmt.Sprintf("%s load; hwtstamp is read with 8-byte loads", sized(size))
			}
		case inRange(off, skbTstamp, 8):
			if size != 8 {
				return conversion{}, fmt.Sprintf("%s access; tstamp is accessed with 8-byte loads and stores", sized(size))
			}
		case inRange(off, skbSk, 8):
			if a.write {
				return conversion{}, "the field is read-only"
			}
			if size != 8 {
				return conversion{}, fmt.Sprintf("%s load; sk is read with an 8-byte load", sized(size))
			}
		case off == skbTstampType:
			return conversion{}, "only tc programs may read tstamp_type"
		case off > skbTstampType && off < skbHwtstamp:
			return conversion{}, "the bytes after tstamp_type are padding"
		default:
			if a.write {
				if size != 4 {
					return conversion{}, fmt.Sprintf("%s store; the field is written with 4-byte stores", sized(size))
				}
			} else if size > 4 {
				return conversion{}, fmt.Sprintf("%s load of a 4-byte field", sized(size))
			}
		}
	}
	if f == nil || f.Runtime < 0 {
		return conversion{}, "waggle has no such field"
	}
	c := conversion{off: f.Runtime + off - f.Off}
	if t := skbTargetSize[f.Off]; !a.write && t != 0 && size >= t {
		// The kernel loads the whole sk_buff member (t bytes) and
		// shifts and masks only for loads narrower than it
		// (convert_ctx_accesses in kernel/bpf/verifier.c), so a load
		// of the upper bytes of the u32 gives the member's whole
		// value. Loading from the start of the slot does the same.
		c.off = f.Runtime
	}
	switch {
	case f.Kind == Pointer:
		c.size = 8
	case a.write && (off == skbTCIndex || off == skbTCClassid || off == skbQueueMapping):
		// The kernel stores these as u16 (BPF_EMIT_STORE(BPF_H, ...)); a
		// 2-byte store to the low half of the u32 slot truncates the same
		// way. A BPF_ST of queue_mapping >= NO_QUEUE_MAPPING (0xffff) is
		// a no-op, as in the kernel. A BPF_STX of such a value is stored
		// truncated, where the kernel's extra compare would skip it: the
		// one-instruction rewrite cannot express that branch.
		if off == skbQueueMapping && a.store && a.imm >= 0xffff {
			c.noop = true
		}
		c.size = 2
	}
	return c, ""
}
