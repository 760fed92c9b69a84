package mem

import (
	"testing"

	"golang.org/x/sys/unix"
)

// resident counts the pages of b that have memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (cap(b)+PageSize()-1)/PageSize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(Addr(b)), uintptr(cap(b)), uintptr(Addr(vec))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestPopulate(t *testing.T) {
	const pages = 256
	b, err := Alloc(pages*PageSize() - 100)
	if err != nil {
		t.Fatal(err)
	}
	defer Free(b)
	if n := resident(t, b); n != 0 {
		t.Fatalf("%d pages resident before anything touched them", n)
	}
	Populate(b)
	if n := resident(t, b); n != pages {
		t.Fatalf("%d of %d pages resident after Populate", n, pages)
	}
	for i, v := range b {
		if v != 0 {
			t.Fatalf("byte %d is %d after Populate, want 0", i, v)
		}
	}
}
