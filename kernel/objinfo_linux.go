//go:build linux

package kernel

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// cilium/ebpf's ProgramInfo and MapInfo leave out a few fields of
// bpf_prog_info and bpf_map_info that bpftool shows: a program's
// gpl_compatible bit and its translated instructions as the kernel's bytes
// (cilium/ebpf decodes them into its own instructions, which re-encode with
// some offsets cleared), and a map's BTF key and value type ids, without
// which its elements cannot be formatted. These functions read them with
// BPF_OBJ_GET_INFO_BY_FD on a file descriptor the caller owns (from
// cilium/ebpf's Program.FD or Map.FD).

// Byte offsets in struct bpf_prog_info and struct bpf_map_info
// (include/uapi/linux/bpf.h).
const (
	progInfoGPLOffset   = 84 // __u32 gpl_compatible:1 (bit 0 of the word, on either byte order's first bit)
	progInfoHeadSize    = 88 // up to netns_dev
	mapInfoBTFIDOffset  = 64 // __u32 btf_id
	mapInfoKeyIDOffset  = 68 // __u32 btf_key_type_id
	mapInfoValIDOffset  = 72 // __u32 btf_value_type_id
	mapInfoHeadSize     = 80 // up to btf_vmlinux_id
	maxXlatedProgLength = 1 << 24
)

// objInfo fills buf with the head of the object's info.
func objInfo(fd int, buf []byte) error {
	attr := infoAttr{fd: uint32(fd), infoLen: uint32(len(buf)), info: bytesPtr(buf)}
	_, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, &attr)
	runtime.KeepAlive(buf)
	if err != nil {
		return fmt.Errorf("object info of fd %d: %w", fd, err)
	}
	return nil
}

// ProgramGPLCompatible reports whether the program behind fd was loaded
// with a GPL-compatible license (bpf_prog_info.gpl_compatible).
func ProgramGPLCompatible(fd int) (bool, error) {
	buf := make([]byte, progInfoHeadSize)
	if err := objInfo(fd, buf); err != nil {
		return false, err
	}
	w := binary.NativeEndian.Uint32(buf[progInfoGPLOffset:])
	if nativeBigEndian() {
		return w>>31 != 0, nil // bitfields start at the most significant bit
	}
	return w&1 != 0, nil
}

func nativeBigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

// ProgramXlatedBytes returns the translated instructions of the program
// behind fd as the kernel reports them (bpf_insn_prepare_dump: map
// pointers as map ids, helper calls as offsets from __bpf_call_base, a
// bpf-to-bpf call's subprogram index in imm and its relative target in
// off). The kernel gives them only to CAP_SYS_ADMIN (and hides them under
// kernel.kptr_restrict with bpf_jit_harden).
func ProgramXlatedBytes(fd int) ([]byte, error) {
	var info progInfo
	attr := infoAttr{fd: uint32(fd), infoLen: uint32(sizeofProgInfo), info: structPtr(&info)}
	if _, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, &attr); err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	if info.xlatedProgLen == 0 {
		return nil, fmt.Errorf("program info: the kernel shows no translated instructions (needs CAP_SYS_ADMIN; see kernel.kptr_restrict)")
	}
	if info.xlatedProgLen > maxXlatedProgLength {
		return nil, fmt.Errorf("program info: %d bytes of translated instructions", info.xlatedProgLen)
	}
	buf := make([]byte, info.xlatedProgLen)
	info = progInfo{xlatedProgLen: uint32(len(buf)), xlatedProgInsns: bytesPtr(buf)}
	attr = infoAttr{fd: uint32(fd), infoLen: uint32(sizeofProgInfo), info: structPtr(&info)}
	if _, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, &attr); err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	runtime.KeepAlive(buf)
	return buf[:min(len(buf), int(info.xlatedProgLen))], nil
}

// MapBTFTypes returns the BTF object id of the map behind fd and the ids of
// its key and value types in it (bpf_map_info.btf_id, btf_key_type_id,
// btf_value_type_id); all zero for a map created without BTF.
func MapBTFTypes(fd int) (btfID, keyType, valueType uint32, err error) {
	buf := make([]byte, mapInfoHeadSize)
	if err := objInfo(fd, buf); err != nil {
		return 0, 0, 0, err
	}
	ne := binary.NativeEndian
	return ne.Uint32(buf[mapInfoBTFIDOffset:]), ne.Uint32(buf[mapInfoKeyIDOffset:]), ne.Uint32(buf[mapInfoValIDOffset:]), nil
}
