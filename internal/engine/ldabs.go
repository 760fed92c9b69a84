package engine

import "github.com/waggle-bpf/waggle/helpers"

// LoadPacket implements the legacy packet loads (LD_ABS, LD_IND) for
// every engine: the n bytes (1, 2 or 4) at off, read in network byte
// order, or false where Linux's bpf_skb_load_helper_* fails the load
// (the program then ends with r0 = 0). The offset is a 32-bit signed
// value, as in the kernel's rewrite. A run state Hook that is a
// helpers.PacketLoader finds the bytes: in the packet as helpers left
// it, and below 0 in the SKF_NET_OFF (network header) and SKF_LL_OFF
// (MAC header) areas. Without one, packet (Args.Packet) is read from 0
// on.
func LoadPacket(st *helpers.State, packet []byte, off int32, n uint8) (uint64, bool) {
	var b []byte
	if pl, ok := st.Hook.(helpers.PacketLoader); ok {
		if b, ok = pl.LoadPacket(off, int(n)); !ok || len(b) != int(n) {
			return 0, false
		}
	} else {
		if off < 0 || int64(off)+int64(n) > int64(len(packet)) {
			return 0, false
		}
		b = packet[off : int(off)+int(n)]
	}
	switch n {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(b[0])<<8 | uint64(b[1]), true
	}
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), true
}
