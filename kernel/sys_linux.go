//go:build linux

package kernel

// This file is the only place in the package that uses unsafe: the bpf(2)
// system call takes a pointer to a bpf_attr union whose fields hold further
// user-space pointers. Invariants it relies on:
//   - Every attr struct here has exactly the layout of its member of union
//     bpf_attr in include/uapi/linux/bpf.h (Linux 6.18); sys_test.go pins the
//     offsets. Kernels that do not know the trailing fields accept them
//     because they are zero (bpf_check_uarg_tail_zero).
//   - Pointers inside an attr are ptr values (unsafe.Pointer underneath), so
//     the memory they point to is on the Go heap, which does not move, and
//     stays reachable for as long as the attr does; bpf() keeps the attr
//     alive across the call with runtime.KeepAlive.
//   - The kernel writes only into buffers whose size the attr states.

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progLoadAttr is the BPF_PROG_LOAD member of union bpf_attr.
type progLoadAttr struct {
	progType           uint32 // 0
	insnCnt            uint32 // 4
	insns              ptr    // 8
	license            ptr    // 16
	logLevel           uint32 // 24
	logSize            uint32 // 28
	logBuf             ptr    // 32
	kernVersion        uint32 // 40
	progFlags          uint32 // 44
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32 // 64
	expectedAttachType uint32 // 68
	progBTFFD          uint32 // 72
	funcInfoRecSize    uint32 // 76
	funcInfo           ptr    // 80
	funcInfoCnt        uint32 // 88
	lineInfoRecSize    uint32 // 92
	lineInfo           ptr    // 96
	lineInfoCnt        uint32 // 104
	attachBTFID        uint32 // 108
	attachProgFD       uint32 // 112
	coreReloCnt        uint32 // 116
	fdArray            ptr    // 120
	coreRelos          ptr    // 128
	coreReloRecSize    uint32 // 136
	logTrueSize        uint32 // 140: written by the kernel (6.4+)
}

// testRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr ("test").
type testRunAttr struct {
	progFD      uint32 // 0
	retval      uint32 // 4: out
	dataSizeIn  uint32 // 8
	dataSizeOut uint32 // 12: in: buffer size, out: bytes written
	dataIn      ptr    // 16
	dataOut     ptr    // 24
	repeat      uint32 // 32
	duration    uint32 // 36: out, ns per run
	ctxSizeIn   uint32 // 40
	ctxSizeOut  uint32 // 44: in/out like dataSizeOut
	ctxIn       ptr    // 48
	ctxOut      ptr    // 56
	flags       uint32 // 64
	cpu         uint32 // 68
	batchSize   uint32 // 72
	_           uint32 // 76
}

// infoAttr is the BPF_OBJ_GET_INFO_BY_FD member of union bpf_attr.
type infoAttr struct {
	fd      uint32 // 0
	infoLen uint32 // 4: in: buffer size, out: bytes written
	info    ptr    // 8
}

// progInfo is the head of struct bpf_prog_info, up to the fields Xlated
// reads; the kernel fills only as much as infoLen allows.
type progInfo struct {
	typ             uint32  // 0
	id              uint32  // 4
	tag             [8]byte // 8
	jitedProgLen    uint32  // 16
	xlatedProgLen   uint32  // 20
	jitedProgInsns  ptr     // 24
	xlatedProgInsns ptr     // 32
}

// bpf issues bpf(cmd, attr, size).
func bpf[T any](cmd int, attr *T) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// bytesPtr returns a ptr to b[0], or a null ptr for an empty slice.
func bytesPtr(b []byte) ptr {
	if len(b) == 0 {
		return ptr{}
	}
	return newPtr(unsafe.Pointer(unsafe.SliceData(b)))
}

// structPtr returns a ptr to *v.
func structPtr[T any](v *T) ptr { return newPtr(unsafe.Pointer(v)) }

const sizeofProgInfo = unsafe.Sizeof(progInfo{})
