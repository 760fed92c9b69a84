package kernel

import (
	"strings"

	"github.com/cilium/ebpf"
)

// AttachOptions configure AttachFile.
type AttachOptions struct {
	// Program is the name of the program to attach (the function's name,
	// as cilium/ebpf names it); "" for the object's only program.
	Program string
	// Hook is where to attach it. Its Kind may be HookNone: the program's
	// section name says then; fields it leaves zero are taken from the
	// section name when that names a hook of the same kind (Hook.Merge).
	Hook Hook
	// Prepare, when not nil, may change the object's spec after AttachFile
	// has fixed its program types and before it is loaded (RunIface adds
	// its verdict counter there).
	Prepare func(*ebpf.CollectionSpec) error
}

// MapPinName is the file name Attached.Pin pins a map of the given name
// under in DIR/maps: the name with dots made underscores, as bpffs refuses
// dots; "" for a name no file can have.
func MapPinName(name string) string {
	if name == "" || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return ""
	}
	return strings.ReplaceAll(name, ".", "_")
}
