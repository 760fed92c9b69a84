package trafficgen

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// The committed capture, its labels and hosts are what `go generate`
// writes today: a change to the generator that changes them must commit
// them again.
func TestTestdata_current(t *testing.T) {
	s, err := Preset("testdata")
	if err != nil {
		t.Fatal(err)
	}
	pcap, labels, counts := mustWrite(t, s)
	for _, f := range []struct {
		path string
		want []byte
	}{{"../testdata/attacks.pcap", pcap}, {"../testdata/attacks.labels.jsonl", labels}} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Fatalf("%s is stale: run go generate ./apps/firewall/trafficgen", f.path)
		}
	}
	g, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(g.Hosts(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../testdata/attacks.hosts.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(want, '\n')) {
		t.Fatal("attacks.hosts.json is stale: run go generate ./apps/firewall/trafficgen")
	}
	if len(pcap) >= 1<<20 {
		t.Errorf("the capture is %d bytes, more than 1 MB", len(pcap))
	}
	for _, c := range Classes() {
		if counts[c] == 0 {
			t.Errorf("no %v packet in the capture", c)
		}
	}
}

func TestPreset_unknown(t *testing.T) {
	if _, err := Preset("nope"); err == nil {
		t.Fatal("Preset(nope) succeeded")
	}
}
