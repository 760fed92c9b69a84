package maps

import "testing"

// TestJhash pins jhash to Bob Jenkins' lookup3 hashlittle, which Linux's
// jhash is on little-endian machines (test vectors from lookup3.c's
// driver5). The kernel differential test checks it against Linux itself:
// with BPF_F_ZERO_SEED, waggle's hash maps iterate in the kernel's order.
func TestJhash(t *testing.T) {
	if !littleEndian() {
		t.Skip("lookup3's vectors are for little-endian hosts")
	}
	for _, tc := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0xdeadbeef},
		{"", 0xdeadbeef, 0xbd5b7dde},
		{"Four score and seven years ago", 0, 0x17770551},
		{"Four score and seven years ago", 1, 0xcd628161},
	} {
		if got := jhash([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("jhash(%q, %#x) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
		}
	}
	// jhash2 over whole words equals jhash over their bytes.
	b := []byte("0123456789abcdefghijklmnopqrstuv")
	for n := 0; n <= len(b); n += 4 {
		if jhash2(b[:n], 7) != jhash(b[:n], 7) {
			t.Errorf("jhash2 and jhash differ on %d bytes", n)
		}
	}
}

func littleEndian() bool {
	var b [2]byte
	native.PutUint16(b[:], 1)
	return b[0] == 1
}
