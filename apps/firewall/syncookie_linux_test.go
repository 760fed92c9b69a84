package firewall

import (
	"bytes"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// kernelRunner runs packets through the kernel's BPF_PROG_TEST_RUN.
type kernelRunner struct{ prog *ebpf.Program }

func (k kernelRunner) run(tb testing.TB, p Packet) (Verdict, []byte) {
	tb.Helper()
	data, md := ReplayInput(p)
	opts := &ebpf.RunOptions{Data: data, Context: md, DataOut: make([]byte, 4096)}
	ret, err := k.prog.Run(opts)
	if err != nil {
		tb.Fatal(err)
	}
	rule, err := RuleOf(opts.DataOut)
	if err != nil {
		tb.Fatal(err)
	}
	return Verdict{Action: ret, Rule: rule}, opts.DataOut[MetaSize:]
}

// TestKernel_synCookies runs the SYN-cookie handshakes of
// TestReplayer_synCookies through the kernel (its helpers, its secret)
// and through waggle: the same actions and rules, the same counters, and
// the same SYN-ACKs but for the cookie (the sequence number) and the TCP
// checksum, which cover the secrets' difference.
func TestKernel_synCookies(t *testing.T) {
	comp := mustCompile(t, cookieConfig)
	coll, prog := kernelFirewall(t, comp)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Unix(1_700_000_000, 0)
	first := Packet{Data: synPacket(t, "198.51.100.1", "203.0.113.1", 1, 1, 0, 1460), Time: start}
	runners := []runner{kernelRunner{prog}, waggleRunner{r.Collection().Programs[ProgramName]}}
	var answers [2][]synAck
	for i, rn := range runners {
		if v, _ := rn.run(t, first); v.Action != XDPPass {
			t.Fatalf("runner %d: the SYN before the attack: %s by %d", i, ActionName(v.Action), v.Rule)
		}
		answers[i] = testCookieHandshake(t, rn, start.Add(time.Second))
	}
	if len(answers[0]) != len(answers[1]) {
		t.Fatalf("kernel %d answers, waggle %d", len(answers[0]), len(answers[1]))
	}
	for i := range answers[0] {
		k, w := answers[0][i], answers[1][i]
		if k.seq == w.seq {
			t.Errorf("%s: the kernel's cookie and waggle's are both %#x: their secrets should differ", cookieCases[i].name, k.seq)
		}
		kf, wf := maskCookie(k.frame), maskCookie(w.frame)
		if !bytes.Equal(kf, wf) {
			t.Errorf("%s: SYN-ACKs differ beyond the cookie and checksum:\nkernel %x\nwaggle %x", cookieCases[i].name, kf, wf)
		}
	}
	uc, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, comp, uc, countersOf(t, coll))
	t.Logf("counters: %v", uc)
}

// maskCookie zeroes a SYN-ACK's sequence number and TCP checksum.
func maskCookie(frame []byte) []byte {
	f := bytes.Clone(frame)
	l4 := 14 + 20
	if len(f) > 13 && f[12] == 0x86 && f[13] == 0xdd {
		l4 = 14 + 40
	}
	if len(f) >= l4+20 {
		clear(f[l4+4 : l4+8])
		clear(f[l4+16 : l4+18])
	}
	return f
}
