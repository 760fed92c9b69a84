package ksamples

import (
	"strings"
	"testing"
)

// TestOffsetLine turns the DEFINE() markers of syscall_nrs.c's assembly
// into what Kbuild's sed-offsets gives, and leaves the COMMENT() out.
func TestOffsetLine(t *testing.T) {
	asm := "\t.ascii\t\"->#Linux system call numbers.\"\n" +
		"\t.ascii\t\"->SYS__NR_write $1 1\"\n" +
		"#APP\n.ascii \"->SYS__NR_mmap $9 9\"\n" +
		"\t.ascii\t\"plain\"\n"
	var got []string
	for _, l := range strings.Split(asm, "\n") {
		if m := offsetLine.FindStringSubmatch(l); m != nil {
			got = append(got, m[1]+"="+m[2])
		}
	}
	if strings.Join(got, " ") != "SYS__NR_write=1 SYS__NR_mmap=9" {
		t.Errorf("got %q", got)
	}
}

// TestKey changes with every input.
func TestKey(t *testing.T) {
	src, err := Find()
	if err != nil {
		t.Skip(err)
	}
	k1, err := Key(src)
	if err != nil {
		t.Fatal(err)
	}
	hadBTF := src.BTF != ""
	src.BTF = ""
	k2, err := Key(src)
	if err != nil {
		t.Fatal(err)
	}
	if hadBTF && k1 == k2 || len(k1) != 24 {
		t.Errorf("keys %q %q", k1, k2)
	}
}
