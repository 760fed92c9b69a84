//go:build linux && amd64

package jitrt

import (
	"encoding/binary"
	"runtime"
	"testing"
	"unsafe"
)

// exitCode is "ec.R0 = r0; ec.Exit = ExitOK; restore Go's SP and BP;
// ret", hand-assembled, after prefix.
func exitCode(prefix []byte) []byte {
	off := func(f uintptr) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(f)) }
	var ec ExecCtx
	c := append([]byte(nil), prefix...)
	c = append([]byte(nil), prefix...)
	// mov [r12+R0], rax
	c = append(c, 0x49, 0x89, 0x84, 0x24)
	c = append(c, off(unsafe.Offsetof(ec.R0))...)
	// mov qword [r12+Exit], ExitOK
	c = append(c, 0x49, 0xc7, 0x84, 0x24)
	c = append(c, off(unsafe.Offsetof(ec.Exit))...)
	c = binary.LittleEndian.AppendUint32(c, ExitOK)
	// mov rsp, [r12+GoSP]; mov rbp, [r12+GoBP]; ret
	c = append(c, 0x49, 0x8b, 0xa4, 0x24)
	c = append(c, off(unsafe.Offsetof(ec.GoSP))...)
	c = append(c, 0x49, 0x8b, 0xac, 0x24)
	c = append(c, off(unsafe.Offsetof(ec.GoBP))...)
	return append(c, 0xc3)
}

func TestJump(t *testing.T) {
	// mov rax, 42; clobber every other register the code may; exit.
	prefix := []byte{0x48, 0xc7, 0xc0, 42, 0, 0, 0}
	for _, r := range []byte{1, 2, 3, 6, 7} { // rcx, rdx, rbx, rsi, rdi
		prefix = append(prefix, 0x48, 0xc7, 0xc0|r, 0xff, 0xff, 0xff, 0xff)
	}
	for r := byte(0); r < 8; r++ { // r8-r15 but r12 (ec)
		if r == 4 {
			continue
		}
		prefix = append(prefix, 0x49, 0xc7, 0xc0|r, 0xff, 0xff, 0xff, 0xff)
	}
	code, err := NewCode(exitCode(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer code.Free()
	st, err := NewStack(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Free()
	ec := new(ExecCtx)
	for i := range 1000 {
		ec.Exit, ec.R0 = 0, 0
		Jump(code.Addr(), st.Top(), ec)
		if ec.Exit != ExitOK || ec.R0 != 42 {
			t.Fatalf("run %d: exit %d, r0 %d", i, ec.Exit, ec.R0)
		}
		if i%100 == 0 {
			runtime.GC()
		}
	}
}

func TestCodeNotWritable(t *testing.T) {
	code, err := NewCode([]byte{0xc3})
	if err != nil {
		t.Fatal(err)
	}
	defer code.Free()
	if b := code.Bytes(); len(b) != 1 || b[0] != 0xc3 {
		t.Fatalf("code %x", b)
	}
	// The mapping is read-execute: /proc/self/maps says so.
	if perm := mappingPerm(t, code.Addr()); perm != "r-xp" {
		t.Errorf("code mapped %s, want r-xp", perm)
	}
	st, err := NewStack(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Free()
	lo, _ := st.Guard()
	if perm := mappingPerm(t, lo); perm != "---p" {
		t.Errorf("guard page mapped %s, want ---p", perm)
	}
	if perm := mappingPerm(t, st.Top()-1); perm != "rw-p" {
		t.Errorf("stack mapped %s, want rw-p", perm)
	}
}

func TestFree(t *testing.T) {
	code, err := NewCode([]byte{0xc3})
	if err != nil {
		t.Fatal(err)
	}
	if err := code.Free(); err != nil {
		t.Fatal(err)
	}
	if err := code.Free(); err != nil {
		t.Fatalf("second Free: %v", err)
	}
	if _, err := NewCode(nil); err == nil {
		t.Error("NewCode(nil) succeeded")
	}
}
