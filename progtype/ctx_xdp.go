package progtype

import "fmt"

// UAPI offsets of struct xdp_md (include/uapi/linux/bpf.h).
const (
	xdpData           = 0
	xdpDataEnd        = 4
	xdpDataMeta       = 8
	xdpIngressIfindex = 12
	xdpRxQueueIndex   = 16
	xdpEgressIfindex  = 20
	xdpSize           = 24
)

// xdpLayout is struct xdp_md. Every field is read-only; the runtime layout
// widens the three pointers:
//
//	 0 data   8 data_end   16 data_meta
//	24 ingress_ifindex  28 rx_queue_index  32 egress_ifindex  (40 bytes)
var xdpLayout = func() *Layout {
	b := newLayout("xdp_md", xdpSize)
	for _, f := range []Field{
		{Name: "data", Kind: Pointer, Off: xdpData, Size: 4},
		{Name: "data_end", Kind: Pointer, Off: xdpDataEnd, Size: 4},
		{Name: "data_meta", Kind: Pointer, Off: xdpDataMeta, Size: 4},
		{Name: "ingress_ifindex", Off: xdpIngressIfindex, Size: 4},
		{Name: "rx_queue_index", Off: xdpRxQueueIndex, Size: 4},
		{Name: "egress_ifindex", Off: xdpEgressIfindex, Size: 4},
	} {
		b.place(f, false)
	}
	return b.done()
}()

// Runtime offsets of the xdp_md shadow, as xdpLayout places them
// (TestXDPRuntimeOffsets): constants, so that the per-packet reset
// (resetXDPData, syncXDP) stores without bounds checks.
const (
	rtXDPData     = 0
	rtXDPDataEnd  = 8
	rtXDPDataMeta = 16
	rtXDPIngress  = 24
	rtXDPRxQueue  = 28
	rtXDPEgress   = 32
	rtXDPSize     = 40
)

// xdpRules is xdp_is_valid_access and __is_valid_xdp_access
// (net/core/filter.c): every field is read-only and read with 4-byte loads;
// egress_ifindex only by programs attached to a devmap; pointers not
// sign-extending. The rewrite is xdp_convert_ctx_access's, onto the shadow.
func xdpRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off == xdpEgressIfindex && k.attach != AttachXDPDevMap {
		return conversion{}, "only programs attached to a devmap (BPF_XDP_DEVMAP) may read egress_ifindex"
	}
	if a.write {
		return conversion{}, "xdp_md is read-only"
	}
	if (off == xdpData || off == xdpDataEnd || off == xdpDataMeta) && a.signExt {
		return conversion{}, "pointer fields may not be loaded sign-extending"
	}
	if off < 0 || off >= xdpSize {
		return conversion{}, fmt.Sprintf("offset %d is outside xdp_md (%d bytes)", off, xdpSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	if size != 4 {
		return conversion{}, fmt.Sprintf("%s load; xdp_md fields are read with 4-byte loads", sized(size))
	}
	f := xdpLayout.Field(off)
	c := conversion{off: f.Runtime}
	if f.Kind == Pointer {
		c.size = 8
	}
	return c, ""
}
