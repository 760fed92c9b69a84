package waggle

import (
	"encoding/binary"
	"testing"
)

// TestRunBatch_section: the runs of a batch share grace sections of
// sectionRuns runs, and the batch leaves none entered, however it ends:
// after a batch over the blocklist example (which looks its LPM trie up),
// the runner the batch used holds no map, so writers of the trie are not
// kept waiting.
func TestRunBatch_section(t *testing.T) {
	for _, e := range Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := LoadCollection("examples/blocklist/blocklist.o", &CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			p := coll.Programs["xdp_blocklist"]
			frame := make([]byte, 64)
			binary.BigEndian.PutUint16(frame[12:], 0x0800)
			frame[14], frame[23] = 0x45, 17
			copy(frame[26:30], []byte{10, 0, 0, 1})
			for _, n := range []int{1, sectionRuns - 1, sectionRuns, 3*sectionRuns + 5} {
				runs := make([]BatchRun, n)
				for i := range runs {
					runs[i].Data = frame
				}
				if got, err := p.RunBatch(runs, nil); err != nil || got != n {
					t.Fatalf("%d runs: %d, %v", n, got, err)
				}
				rn := p.getRunner()
				used, held, keep := rn.run != nil, rn.st.Section.Held(), rn.keepSection
				p.runners.Put(rn)
				if !used {
					t.Logf("after a batch of %d: the pool gave a new runner, nothing to check", n)
					continue
				}
				if held || keep {
					t.Fatalf("after a batch of %d: the runner holds a section %v, keeps it %v", n, held, keep)
				}
			}
			// A batch that fails part way leaves none either.
			runs := []BatchRun{{Data: frame}, {Data: frame[:3]}}
			if _, err := p.RunBatch(runs, nil); err == nil {
				t.Fatal("a 3-byte frame ran")
			}
			rn := p.getRunner()
			defer p.runners.Put(rn)
			if rn.st.Section.Held() || rn.keepSection {
				t.Fatal("a failed batch left its section entered")
			}
		})
	}
}
