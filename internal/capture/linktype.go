package capture

import "fmt"

// linkTypeNames are the names of common link-layer header types in the
// tcpdump.org registry (https://www.tcpdump.org/linktypes.html), without
// their LINKTYPE_ prefix.
var linkTypeNames = map[uint32]string{
	0:   "NULL",
	1:   "ETHERNET",
	6:   "IEEE802_5",
	8:   "SLIP",
	9:   "PPP",
	10:  "FDDI",
	50:  "PPP_HDLC",
	51:  "PPP_ETHER",
	101: "RAW",
	104: "C_HDLC",
	105: "IEEE802_11",
	108: "LOOP",
	113: "LINUX_SLL",
	117: "PFLOG",
	119: "IEEE802_11_PRISM",
	127: "IEEE802_11_RADIOTAP",
	143: "DOCSIS",
	163: "IEEE802_11_AVS",
	187: "BLUETOOTH_HCI_H4",
	189: "USB_LINUX",
	192: "PPI",
	195: "IEEE802_15_4_WITHFCS",
	201: "BLUETOOTH_HCI_H4_WITH_PHDR",
	220: "USB_LINUX_MMAPPED",
	226: "IPNET",
	228: "IPV4",
	229: "IPV6",
	239: "NFLOG",
	249: "USBPCAP",
	253: "NETLINK",
	276: "LINUX_SLL2",
}

// LinkTypeName returns a link type's number and, if it is a common one,
// its name in the tcpdump.org registry: "113 (LINUX_SLL)", "1 (ETHERNET)",
// "4242" for one the table lacks.
func LinkTypeName(t uint32) string {
	if name, ok := linkTypeNames[t]; ok {
		return fmt.Sprintf("%d (%s)", t, name)
	}
	return fmt.Sprint(t)
}
