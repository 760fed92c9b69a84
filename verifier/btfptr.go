package verifier

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// BTF-typed kernel pointers (PTR_TO_BTF_ID): what helpers such as
// bpf_get_current_task_btf and bpf_skc_to_tcp_sock return, and what loads
// of pointer fields through them give. Their types are the kernel's own
// structs, read from its BTF (/sys/kernel/btf/vmlinux). A load through
// one walks the struct to the member at the load's constant offset
// (btf_struct_access in kernel/bpf/btf.c); a pointer member to a struct
// gives a pointer of that struct, any other member a scalar.
//
// The kernel turns these loads into BPF_PROBE_MEM: they cannot fault at
// run time, whatever the pointer holds. waggle's user-space runtime has no
// kernel objects and offers none of the helpers that return them
// (progtype.TargetUser), so such programs are verified (for
// progtype.TargetLinux and TargetHost) but never run by waggle.

// KernelTypes is the kernel's BTF as the verifier reads it: the types of
// BTF-typed kernel pointers and of the structs behind map pointers. It is
// loaded on first use and shared by every verification given the same
// KernelTypes (Options.KernelTypes), so that a collection reads
// /sys/kernel/btf/vmlinux once. It is safe for concurrent use; the zero
// KernelTypes loads the running kernel's BTF.
type KernelTypes struct {
	once sync.Once
	load func() (*btf.Spec, error)
	spec *btf.Spec
	err  error

	mu     sync.Mutex
	byName map[string]btf.TypeID // struct name to id; 0: not a struct of the kernel
}

// NewKernelTypes returns the running kernel's BTF, loaded on first use
// with btf.LoadKernelSpec.
func NewKernelTypes() *KernelTypes { return &KernelTypes{load: btf.LoadKernelSpec} }

// KernelTypesFrom returns the kernel BTF spec as KernelTypes; a nil spec
// stands for a kernel without BTF: every program that needs it is
// refused.
func KernelTypesFrom(spec *btf.Spec) *KernelTypes {
	return &KernelTypes{load: func() (*btf.Spec, error) {
		if spec == nil {
			return nil, errors.New("no kernel BTF given")
		}
		return spec, nil
	}}
}

// Spec returns the kernel's BTF, loading it the first time.
func (k *KernelTypes) Spec() (*btf.Spec, error) {
	k.once.Do(func() {
		if k.load == nil {
			k.load = btf.LoadKernelSpec
		}
		k.spec, k.err = k.load()
		if k.err == nil && k.spec == nil {
			k.err = errors.New("no kernel BTF")
		}
	})
	return k.spec, k.err
}

// structID returns the id of the kernel struct named name.
func (k *KernelTypes) structID(name string) (btf.TypeID, error) {
	spec, err := k.Spec()
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	id, ok := k.byName[name]
	k.mu.Unlock()
	if ok {
		if id == 0 {
			return 0, fmt.Errorf("the kernel's BTF has no struct %s", name)
		}
		return id, nil
	}
	// The struct of that name with the lowest id, as the kernel's
	// btf_find_by_name_kind finds one where several share a name.
	if types, err := spec.AnyTypesByName(name); err == nil {
		for _, t := range types {
			if _, ok := t.(*btf.Struct); !ok {
				continue
			}
			if tid, err := spec.TypeID(t); err == nil && (id == 0 || tid < id) {
				id = tid
			}
		}
	}
	k.mu.Lock()
	if k.byName == nil {
		k.byName = map[string]btf.TypeID{}
	}
	k.byName[name] = id
	k.mu.Unlock()
	if id == 0 {
		return 0, fmt.Errorf("the kernel's BTF has no struct %s", name)
	}
	return id, nil
}

// typeByID returns the kernel type of id.
func (k *KernelTypes) typeByID(id int32) (btf.Type, error) {
	spec, err := k.Spec()
	if err != nil {
		return nil, err
	}
	return spec.TypeByID(btf.TypeID(id))
}

// typeID returns the id of a kernel type.
func (k *KernelTypes) typeID(t btf.Type) (int32, error) {
	spec, err := k.Spec()
	if err != nil {
		return 0, err
	}
	id, err := spec.TypeID(t)
	return int32(id), err
}

// kernelTypes returns the verification's KernelTypes: the options', or
// one of its own, loaded when first needed.
func (v *verifier) kernelTypes() *KernelTypes {
	if v.kt == nil {
		v.kt = v.opts.KernelTypes
		if v.kt == nil {
			v.kt = NewKernelTypes()
		}
	}
	return v.kt
}

// noBTF is the error for a program that needs the kernel's BTF where it
// cannot be had.
func (v *verifier) noBTF(pc int, what string, err error) *Error {
	return hinted(v.errorf(pc, "%s needs the kernel's BTF, which is missing: %v", what, err),
		"verify on a kernel with BTF (CONFIG_DEBUG_INFO_BTF: /sys/kernel/btf/vmlinux), or give it in Options.KernelTypes")
}

// btfName is the name of the kernel type id, for messages and the log.
func (v *verifier) btfName(id int32) string {
	t, err := v.kernelTypes().typeByID(id)
	if err != nil {
		return "?"
	}
	return t.TypeName()
}

// walk results of btfWalk (enum bpf_struct_walk_result).
const (
	walkScalar       = iota // a scalar member
	walkPtr                 // a pointer to a struct
	walkPtrUntrusted        // a pointer to something else
	walkStruct              // the start of a nested struct
)

// maxWalk bounds the nesting a walk follows (BTF is data: a malformed one
// must not loop).
const maxWalk = 64

// btfMembers returns a struct's or union's members and size.
func btfMembers(t btf.Type) (ms []btf.Member, size int, union, ok bool) {
	switch x := t.(type) {
	case *btf.Struct:
		return x.Members, int(x.Size), false, true
	case *btf.Union:
		return x.Members, int(x.Size), true, true
	}
	return nil, 0, false, false
}

// resolveSize is __btf_resolve_size: a member's type without modifiers
// (the outer array for arrays), its size in bytes, and for arrays the
// element type and the number of elements of all dimensions.
func resolveSize(t btf.Type) (outer btf.Type, size int, elem btf.Type, nelems int, err error) {
	var array btf.Type
	nelems = 1
	for range maxWalk {
		switch x := t.(type) {
		case *btf.Int:
			size = int(x.Size)
		case *btf.Struct:
			size = int(x.Size)
		case *btf.Union:
			size = int(x.Size)
		case *btf.Enum:
			size = int(x.Size)
		case *btf.Float:
			size = int(x.Size)
		case *btf.Pointer:
			size = 8
		case *btf.Typedef, *btf.Const, *btf.Volatile, *btf.Restrict, *btf.TypeTag:
			t = skipModifiers(t)
			continue
		case *btf.Array:
			if array == nil {
				array = x
			}
			if nelems != 0 && int64(x.Nelems)*int64(nelems) > 1<<32-1 {
				return nil, 0, nil, 0, errors.New("array too large")
			}
			nelems *= int(x.Nelems)
			t = x.Type
			continue
		default:
			return nil, 0, nil, 0, errors.New("type without size")
		}
		if int64(size)*int64(nelems) > 1<<32-1 {
			return nil, 0, nil, 0, errors.New("type too large")
		}
		size *= nelems
		if array != nil {
			return array, size, t, nelems, nil
		}
		return t, size, t, nelems, nil
	}
	return nil, 0, nil, 0, errors.New("type nests too deep")
}

// btfWalk is btf_struct_walk: what lies at [off, off+size) of struct t.
// It returns the result, the struct reached (walkPtr: the pointee;
// walkStruct: the nested struct), the member's name (walkPtr) and the
// flags the walk adds (flagUntrusted through a union, flagRCU for an
// __rcu member). Its errors are the kernel's messages.
func btfWalk(t btf.Type, off, size int, flags *uint8) (int, btf.Type, string, error) {
	for range maxWalk {
		t = skipModifiers(t)
		tname := t.TypeName()
		members, tsize, union, ok := btfMembers(t)
		if !ok {
			return 0, nil, "", fmt.Errorf("Type '%s' is not a struct", tname)
		}
		if union && len(members) != 1 {
			// Walking a union yields untrusted pointers, but for the
			// unions of one member (__bpf_md_ptr).
			*flags |= flagUntrusted
		}
		if off+size > tsize {
			// A flexible array at the end may be read past the size.
			beyond := fmt.Errorf("access beyond struct %s at off %d size %d", tname, uint32(off), uint32(size))
			if len(members) == 0 {
				return 0, nil, "", beyond
			}
			last := members[len(members)-1]
			arr, ok := skipModifiers(last.Type).(*btf.Array)
			if !ok || arr.Nelems != 0 {
				return 0, nil, "", beyond
			}
			moff := int(last.Offset.Bytes())
			if off < moff {
				return 0, nil, "", beyond
			}
			et := skipModifiers(arr.Type)
			if _, isInt := et.(*btf.Int); isInt {
				return walkScalar, nil, "", nil
			}
			_, esize, _, ok := btfMembers(et)
			if !ok || esize == 0 {
				return 0, nil, "", beyond
			}
			off = (off - moff) % esize
			t = et
			continue
		}
		next, found := false, false
		for _, m := range members {
			moff := int(m.Offset / 8)
			if off+size <= moff {
				break // the field is already too far
			}
			if m.BitfieldSize != 0 {
				endBit := int(m.Offset) + int(m.BitfieldSize)
				if off <= moff && (endBit+7)/8 <= off+size {
					return walkScalar, nil, "", nil
				}
				continue
			}
			if off < moff {
				break // a hole
			}
			mtype, msize, elem, nelems, err := resolveSize(m.Type)
			if err != nil {
				return 0, nil, "", fmt.Errorf("field %s doesn't have size", m.Name)
			}
			mtrueEnd := moff + msize
			if off >= mtrueEnd {
				continue
			}
			if _, isArray := mtype.(*btf.Array); isArray {
				if moff == mtrueEnd {
					continue
				}
				msize /= nelems
				moff += (off - moff) / msize * msize
				mtype = elem
			}
			if _, _, _, isStruct := btfMembers(mtype); isStruct {
				if off == moff {
					return walkStruct, mtype, "", nil
				}
				off -= moff
				t = mtype
				next = true
				break
			}
			if p, isPtr := mtype.(*btf.Pointer); isPtr {
				if msize != size || off != moff {
					return 0, nil, "", fmt.Errorf("cannot access ptr member %s with moff %d in struct %s with off %d size %d", m.Name, uint32(moff), tname, uint32(off), uint32(size))
				}
				var tag uint8
				if tt, ok := p.Target.(*btf.TypeTag); ok {
					switch tt.Value {
					case "rcu":
						tag = flagRCU
					case "user", "percpu":
						return 0, nil, "", fmt.Errorf("member %s of struct %s is a __%s pointer, which waggle's verifier does not support yet", m.Name, tname, tt.Value)
					}
				}
				st := skipModifiers(p.Target)
				if _, _, _, isStruct := btfMembers(st); isStruct {
					*flags |= tag
					return walkPtr, st, m.Name, nil
				}
				return walkPtrUntrusted, nil, m.Name, nil
			}
			// Within an int (or an array of them, skb->cb[]) any access
			// that stays inside the member is a scalar.
			if off+size > mtrueEnd && *flags&flagUntrusted == 0 {
				return 0, nil, "", fmt.Errorf("access beyond the end of member %s (mend:%d) in struct %s with off %d size %d", m.Name, uint32(mtrueEnd), tname, uint32(off), uint32(size))
			}
			found = true
			break
		}
		if found {
			return walkScalar, nil, "", nil
		}
		if !next {
			return 0, nil, "", fmt.Errorf("struct %s doesn't have field at offset %d", tname, off)
		}
	}
	return 0, nil, "", errors.New("struct nests too deep")
}

// btfStructAccess is btf_struct_access: what a load of size bytes at off
// of the struct t gives: a scalar, a pointer to a struct (its type, the
// member's name, the walk's flags) or read-only untrusted memory.
func btfStructAccess(t btf.Type, off, size int) (res int, next btf.Type, field string, flags uint8, err error) {
	for range maxWalk {
		res, next, field, err = btfWalk(t, off, size, &flags)
		if err != nil {
			return 0, nil, "", 0, err
		}
		switch res {
		case walkPtr, walkPtrUntrusted, walkScalar:
			return res, next, field, flags, nil
		}
		t, off = next, 0
	}
	return 0, nil, "", 0, errors.New("struct nests too deep")
}

// btfAccess is check_ptr_to_btf_access: a load or store through a
// BTF-typed kernel pointer, and what a load gives.
func (v *verifier) btfAccess(a access, p *reg, off int) (reg, error) {
	pc := v.insnIdx
	var out reg
	kt := v.kernelTypes()
	t, err := kt.typeByID(p.mapIdx)
	if err != nil {
		return out, v.noBTF(pc, "a load through a kernel object pointer", err)
	}
	tname := t.TypeName()
	if !v.allowPtrLeaks {
		return out, v.errorf(pc, "'struct %s' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN", tname)
	}
	if !v.p.GPL {
		return out, hinted(v.errorf(pc, "Cannot access kernel 'struct %s' from non-GPL compatible program", tname),
			"license the object \"GPL\" or \"Dual BSD/GPL\"")
	}
	if off < 0 {
		return out, v.errorf(pc, "R%d is ptr_%s invalid negative access: off=%d", a.base, tname, off)
	}
	if !p.v.IsConst() || p.v.Var.Value != 0 {
		return out, hinted(v.errorf(pc, "R%d is ptr_%s invalid variable offset: off=%d, var_off=%s", a.base, tname, off, p.v.Var),
			"kernel objects are read at constant offsets only: read the field by name (p->field), not through a computed index")
	}
	if a.write || a.atomic {
		return out, hinted(v.errorf(pc, "only read is supported"),
			"kernel objects cannot be written through a BTF pointer: copy the value to the stack or a map first")
	}
	res, next, field, flags, err := btfStructAccess(t, off, a.size)
	if err != nil {
		return out, hinted(v.errorf(pc, "%v", err),
			"a load reads one member of this kernel's struct %s, whole for a pointer: check the offset against its BTF (bpftool btf dump file /sys/kernel/btf/vmlinux format c)", tname)
	}
	switch res {
	case walkScalar:
		return v.loaded(a, out), nil
	case walkPtrUntrusted:
		// A pointer to something other than a struct: memory that may
		// only be read, through probing loads (Linux 6.17 on).
		out.setPointer(ptrMem)
		out.flags = flagRdonly | flagUntrusted
		return out, nil
	}
	id, err := kt.typeID(next)
	if err != nil {
		return out, v.errorf(pc, "internal error: kernel type %s has no id: %v", next.TypeName(), err)
	}
	switch {
	case p.flags&flagUntrusted != 0:
		// All pointers formed by walking an untrusted one are too.
		flags = flagUntrusted
	case p.flags&(flagTrusted|flagRCU) != 0 || p.ref != 0:
		// By default a pointer loaded from a trusted one is not trusted,
		// unless the kernel lists the field as inheriting the trust
		// (the BTF_TYPE_SAFE_* structs in the kernel's own BTF). A
		// program that does not sleep runs in an RCU read section
		// (in_rcu_cs).
		switch {
		case kt.safeField(p.mapIdx, "__safe_trusted", field, id):
			flags |= flagTrusted
		case kt.safeField(p.mapIdx, "__safe_trusted_or_null", field, id):
			flags |= flagTrusted | flagMaybeNull
		case p.maybeNull() || v.p.Sleepable:
			// Outside an RCU read section (sleepable programs: waggle
			// has no bpf_rcu_read_lock), or through a pointer that may
			// be NULL: untrusted.
			flags = flagUntrusted
		case kt.safeField(p.mapIdx, "__safe_rcu", field, id):
			flags |= flagRCU
		case flags&flagRCU != 0 || kt.safeField(p.mapIdx, "__safe_rcu_or_null", field, id):
			flags |= flagRCU | flagMaybeNull
			if kt.safeField(p.mapIdx, "__safe_rcu_or_null", field, id) {
				flags &^= flagUntrusted
			}
		default:
			// Walking unknown pointers: upstream's code says the old
			// plain PTR_TO_BTF_ID (clear_trusted_flags), but Linux 6.18
			// as it runs gives untrusted_ptr_ (task->mm of the current
			// task; checked by TestBTFPointers).
			flags = flags&^(flagTrusted|flagRCU) | flagUntrusted
		}
	default:
		// A plain pointer's fields: untrusted too on Linux 6.18 (the
		// socket of a bpf_skc_to_tcp_sock result).
		flags = flags&^(flagTrusted|flagRCU) | flagUntrusted
	}
	out.setPointer(ptrBTFID)
	out.mapIdx = id
	out.flags = flags
	if flags&flagMaybeNull != 0 {
		out.id = v.nextID()
	}
	return out, nil
}

// safeField is btf_nested_type_is_trusted: whether the kernel lists field
// (a pointer to the struct of id want) of the struct of id base in its
// "<base>"+suffix struct, where it says which fields inherit their
// parent's trust.
func (k *KernelTypes) safeField(base int32, suffix, field string, want int32) bool {
	if field == "" {
		return false
	}
	bt, err := k.typeByID(base)
	if err != nil {
		return false
	}
	sid, err := k.structID(bt.TypeName() + suffix)
	if err != nil {
		return false
	}
	st, err := k.typeByID(int32(sid))
	if err != nil {
		return false
	}
	members, _, _, _ := btfMembers(st)
	for _, m := range members {
		p, ok := m.Type.(*btf.Pointer)
		if !ok || m.Name != field {
			continue
		}
		if id, err := k.typeID(skipModifiers(p.Target)); err == nil && id == want {
			return true
		}
	}
	return false
}

// structIDsMatch is btf_struct_ids_match: whether the struct of id at
// off is, or starts with (its first members, walked down), the struct
// want. strict allows no walk.
func (k *KernelTypes) structIDsMatch(id int32, off int, want int32, strict bool) bool {
	if off == 0 && id == want {
		return true
	}
	if strict {
		return false
	}
	for range maxWalk {
		t, err := k.typeByID(id)
		if err != nil {
			return false
		}
		var flags uint8
		res, next, _, err := btfWalk(t, off, 1, &flags)
		if err != nil || res != walkStruct {
			return false
		}
		if id, err = k.typeID(next); err != nil {
			return false
		}
		if id == want {
			return true
		}
		off = 0
	}
	return false
}

// mapStructs are the kernel structs behind map pointers, by map type
// (the map_btf_id of each map's bpf_map_ops).
var mapStructs = map[maps.Type]string{
	maps.Hash: "bpf_htab", maps.PerCPUHash: "bpf_htab", maps.LRUHash: "bpf_htab", maps.LRUPerCPUHash: "bpf_htab", maps.HashOfMaps: "bpf_htab",
	maps.Array: "bpf_array", maps.PerCPUArray: "bpf_array", maps.ProgArray: "bpf_array", maps.PerfEventArray: "bpf_array",
	maps.CgroupArray: "bpf_array", maps.ArrayOfMaps: "bpf_array",
	maps.StackTrace: "bpf_stack_map", maps.LPMTrie: "lpm_trie", maps.DevMap: "bpf_dtab", maps.DevMapHash: "bpf_dtab",
	maps.SockMap: "bpf_stab", maps.SockHash: "bpf_shtab", maps.CPUMap: "bpf_cpu_map", maps.XSKMap: "xsk_map",
	maps.CgroupStorage: "bpf_cgroup_storage_map", maps.PerCPUCgroupStorage: "bpf_cgroup_storage_map",
	maps.ReusePortSockArray: "reuseport_array", maps.Queue: "bpf_queue_stack", maps.Stack: "bpf_queue_stack",
	maps.SkStorage: "bpf_local_storage_map", maps.InodeStorage: "bpf_local_storage_map", maps.TaskStorage: "bpf_local_storage_map",
	maps.CgrpStorage: "bpf_local_storage_map", maps.RingBuf: "bpf_ringbuf_map", maps.UserRingBuf: "bpf_ringbuf_map",
	maps.BloomFilter: "bpf_bloom_filter", maps.StructOps: "bpf_struct_ops_map", maps.Arena: "bpf_arena",
}

// mapPtrAccess is check_ptr_to_map_access: a load through a map pointer
// reads the kernel's struct of the map (struct bpf_array, ...), as if
// through a BTF pointer to it.
func (v *verifier) mapPtrAccess(a access, p *reg, off int) (reg, error) {
	pc := v.insnIdx
	var out reg
	if v.opts.Target == progtype.TargetUser {
		return out, hinted(v.errorf(pc, "R%d map_ptr access is not supported by waggle's runtime", a.base),
			"reading a map's kernel struct (struct bpf_map fields) needs the kernel: verify for target linux or host")
	}
	if int(p.mapIdx) >= len(v.p.Maps) || p.mapIdx < 0 {
		return out, v.errorf(pc, "R%d points to map %d, which the program does not have", a.base, p.mapIdx)
	}
	m := v.p.Maps[p.mapIdx].Spec
	name, ok := mapStructs[m.Type]
	if !ok {
		return out, v.errorf(pc, "map_ptr access not supported for map type %d", uint32(m.Type))
	}
	kt := v.kernelTypes()
	id, err := kt.structID(name)
	if err != nil {
		return out, v.noBTF(pc, "map_ptr access", err)
	}
	if !v.allowPtrLeaks {
		return out, v.errorf(pc, "'struct %s' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN", name)
	}
	if off < 0 {
		return out, v.errorf(pc, "R%d is %s invalid negative access: off=%d", a.base, name, off)
	}
	if a.write || a.atomic {
		return out, v.errorf(pc, "only read from %s is supported", name)
	}
	t, err := kt.typeByID(int32(id))
	if err != nil {
		return out, v.noBTF(pc, "map_ptr access", err)
	}
	res, next, _, flags, err := btfStructAccess(t, off, a.size)
	if err != nil {
		return out, v.errorf(pc, "%v", err)
	}
	switch res {
	case walkScalar:
		return v.loaded(a, out), nil
	case walkPtrUntrusted:
		out.setPointer(ptrMem)
		out.flags = flagRdonly | flagUntrusted
		return out, nil
	}
	nid, err := kt.typeID(next)
	if err != nil {
		return out, v.errorf(pc, "internal error: kernel type %s has no id: %v", next.TypeName(), err)
	}
	out.setPointer(ptrBTFID)
	out.mapIdx = nid
	out.flags = flags
	if out.flags&flagMaybeNull != 0 {
		out.id = v.nextID()
	}
	return out, nil
}

// btfArg is check_reg_type for a BTF-typed argument (ARG_PTR_TO_BTF_ID
// with the helper's arg_btf_id, or ARG_PTR_TO_BTF_ID_SOCK_COMMON given a
// kernel socket): the pointer must be to the struct the helper wants, or
// to one that starts with it.
func (v *verifier) btfArg(rn isa.Register, r *reg, want string, release, strict bool) error {
	pc := v.insnIdx
	if r.maybeNull() && release {
		return v.errorf(pc, "Possibly NULL pointer passed to helper arg%d", rn)
	}
	if r.off < 0 {
		return v.errorf(pc, "negative offset %s ptr R%d off=%d disallowed", r.typeName(), rn, r.off)
	}
	if release && r.off != 0 {
		return v.errorf(pc, "R%d must have zero offset when passed to release func or trusted arg to kfunc", rn)
	}
	if !r.v.IsConst() || r.v.Var.Value != 0 {
		return v.errorf(pc, "variable %s access var_off=%s disallowed", r.typeName(), r.v.Var)
	}
	kt := v.kernelTypes()
	wid, err := kt.structID(want)
	if err != nil {
		return v.noBTF(pc, "a kernel object argument", err)
	}
	if !kt.structIDsMatch(r.mapIdx, int(r.off), int32(wid), strict) {
		return v.errorf(pc, "R%d is of type %s but %s is expected", rn, v.btfName(r.mapIdx), want)
	}
	return nil
}
