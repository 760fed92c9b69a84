package trafficgen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestReadLabels_roundTrip(t *testing.T) {
	want := []Label{{Class: Legit, Kind: "dns", Dir: Out}, {Class: SYNFlood, Kind: "ipv6"}, {Class: Malformed, Kind: "ihl"}}
	var b bytes.Buffer
	if err := WriteLabels(&b, want); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `{"index":0,"label":"legit","kind":"dns","dir":"out"}`+"\n") {
		t.Fatalf("first line: %q", b.String())
	}
	got, err := ReadLabels(&b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %+v, wrote %+v", got, want)
	}
}

func TestReadLabels_hostile(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"not json", "{\n", 0, "line 1"},
		{"index skips", `{"index":0,"label":"legit"}` + "\n" + `{"index":2,"label":"legit"}`, 0, "index 2, want 1"},
		{"unknown class", `{"index":0,"label":"evil"}`, 0, "evil"},
		{"unknown dir", `{"index":0,"label":"legit","dir":"up"}`, 0, "direction"},
		{"long line", `{"index":0,"label":"` + strings.Repeat("x", 5000) + `"}`, 0, "longer than"},
		{"over max", `{"index":0,"label":"legit"}` + "\n" + `{"index":1,"label":"legit"}`, 1, "more than 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadLabels(strings.NewReader(tc.in), tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadLabels: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestClass_String(t *testing.T) {
	for _, c := range Classes() {
		got, err := ParseClass(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseClass(%q) = %v, %v", c.String(), got, err)
		}
		if c.IsAttack() == (c == Legit) {
			t.Fatalf("%v.IsAttack() = %v", c, c.IsAttack())
		}
	}
	if s := Class(99).String(); s != "Class(99)" {
		t.Fatalf("Class(99) = %q", s)
	}
}

// FuzzReadLabels: an error or labels, never a panic; what reads back
// writes back to something that reads as the same labels.
func FuzzReadLabels(f *testing.F) {
	f.Add([]byte(`{"index":0,"label":"legit","kind":"dns","dir":"out"}` + "\n"))
	f.Add([]byte(`{"index":0,"label":"syn-flood"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ls, err := ReadLabels(bytes.NewReader(in), 1000)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteLabels(&b, ls); err != nil {
			t.Fatal(err)
		}
		again, err := ReadLabels(&b, 0)
		if err != nil || !slices.Equal(again, ls) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
