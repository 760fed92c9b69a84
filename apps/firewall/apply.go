package firewall

import "github.com/waggle-bpf/waggle/kernel"

// ApplyOptions say where Apply puts the firewall.
type ApplyOptions struct {
	// Interface is the network interface whose XDP hook runs the firewall.
	Interface string
	// Mode is the XDP attach mode (kernel.XDPAuto: the driver's if it has
	// one, else generic).
	Mode kernel.XDPMode
	// PinDir is a directory on a bpffs (/sys/fs/bpf/NAME) where the link,
	// the program and the maps are pinned, so that the firewall outlives
	// the command; a later Apply with the same directory reloads it.
	PinDir string
}

// ApplyResult is what Apply did.
type ApplyResult struct {
	// Reloaded is true when PinDir held a firewall already, whose maps
	// Apply changed in place.
	Reloaded bool `json:"reloaded"`
	// Added, Changed and Removed count the list prefixes a reload put in,
	// gave another rule or filter, and took out.
	Added   int `json:"added"`
	Changed int `json:"changed"`
	Removed int `json:"removed"`
	// Swapped is true when a reload replaced the attached program with
	// this binary's through the link.
	Swapped bool `json:"swapped"`
	// SYNProtection is the SYN protection in force (SYNProtection):
	// with syn_cookies auto, the per-source SYN rate where the kernel
	// lacks the SYN cookie helpers.
	SYNProtection string `json:"syn_protection"`
	// Pinned are the paths a first Apply pinned.
	Pinned []string `json:"pinned,omitempty"`
}
