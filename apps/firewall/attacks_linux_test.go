package firewall

import "testing"

// kernelReplay runs every packet through the kernel's BPF_PROG_TEST_RUN in
// replay mode (the packet's time in the metadata) and through waggle, and
// checks the same verdict and rule for each, and the same counters.
func kernelReplay(t *testing.T, comp *Compiled, l labelled) {
	t.Helper()
	coll, prog := kernelFirewall(t, comp)
	uv, uc := replayAll(t, comp, l.pkts)
	out := make([]byte, 4096)
	rules := map[string]int{}
	var diffs int
	for i, p := range l.pkts {
		kv, err := kernelRun(prog, p, out)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if kv != uv[i] {
			if diffs++; diffs <= 20 {
				t.Errorf("packet %d (%s/%s): kernel %s by %s, waggle %s by %s", i+1, l.labels[i].Class, l.labels[i].Kind,
					ActionName(kv.Action), comp.RuleName(kv.Rule), ActionName(uv[i].Action), comp.RuleName(uv[i].Rule))
			}
		}
		rules[comp.RuleName(kv.Rule)]++
	}
	if diffs > 0 {
		t.Errorf("%d of %d packets differ", diffs, len(l.pkts))
	}
	t.Logf("%d packets, the same verdict and rule for each; by rule: %v", len(l.pkts), rules)
	checkCounters(t, comp, uc, kernelCounters(t, coll))
}

// TestKernel_attacks replays the committed attack capture, and the
// generated ones, through the kernel and through waggle with attacks.yaml
// (and without its client list, so that the shared SYN buckets decide for
// the clients' packets too): packet for packet the same.
func TestKernel_attacks(t *testing.T) {
	cfg := loadAttacksConfig(t)
	committed := readLabelled(t, attacksPcap, attacksLabels)
	t.Run("committed", func(t *testing.T) { kernelReplay(t, compileConfig(t, cfg), committed) })
	t.Run("committed-without-clients", func(t *testing.T) {
		kernelReplay(t, compileConfig(t, withoutRule(t, cfg, clientsRule)), committed)
	})
	for _, sc := range attackScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l, hosts := generate(t, sc.s)
			kernelReplay(t, compileConfig(t, withHosts(t, cfg, hosts)), l)
		})
	}
}
