package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "a.pcap")
	if err := run([]string{"-duration", "1s", "-synflood4", "500", "-amp", "-1", "-synflood6", "-1", "-hosts", filepath.Join(dir, "h.json"), out}); err != nil {
		t.Fatal(err)
	}
	labels, err := os.ReadFile(filepath.Join(dir, "a.labels.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(labels, []byte(`"label":"syn-flood"`)) || bytes.Contains(labels, []byte(`"label":"amplification"`)) {
		t.Fatal("the labels do not follow the flags")
	}
	for _, f := range []string{"a.pcap", "h.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func TestRun_errors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "a.pcap")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "one output file"},
		{[]string{"-preset", "testdata", "-amp", "5", out}, "-preset with -amp"},
		{[]string{"-preset", "nope", out}, "unknown preset"},
		{[]string{"-synflood4", "-3", out}, "SYNFlood4"},
		{[]string{"-victim4", "not-an-ip", out}, "victim"},
		{[]string{"-malformed-kinds", "ihl,bogus", "-malformed", "5", out}, "bogus"},
	} {
		err := run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fwgen %v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused scenario left a capture behind")
	}
}
