// Package btfkind names the kinds of BTF types, as the kernel and bpftool
// print them, for the verifier's messages and bpftool-like output alike.
package btfkind

import "github.com/cilium/ebpf/btf"

// Name is the name of t's BTF kind, as the kernel's btf_kind_str and
// bpftool's raw format spell it: "INT", "PTR", "ENUM64"... Void is "VOID";
// a type cilium/ebpf adds of no kind of BTF's is "UNKNOWN".
func Name(t btf.Type) string {
	switch t := t.(type) {
	case *btf.Void:
		return "VOID"
	case *btf.Int:
		return "INT"
	case *btf.Pointer:
		return "PTR"
	case *btf.Array:
		return "ARRAY"
	case *btf.Struct:
		return "STRUCT"
	case *btf.Union:
		return "UNION"
	case *btf.Enum:
		if t.Size > 4 {
			return "ENUM64"
		}
		return "ENUM"
	case *btf.Fwd:
		return "FWD"
	case *btf.Typedef:
		return "TYPEDEF"
	case *btf.Volatile:
		return "VOLATILE"
	case *btf.Const:
		return "CONST"
	case *btf.Restrict:
		return "RESTRICT"
	case *btf.Func:
		return "FUNC"
	case *btf.FuncProto:
		return "FUNC_PROTO"
	case *btf.Var:
		return "VAR"
	case *btf.Datasec:
		return "DATASEC"
	case *btf.Float:
		return "FLOAT"
	case *btf.TypeTag:
		return "TYPE_TAG"
	}
	return "UNKNOWN"
}
