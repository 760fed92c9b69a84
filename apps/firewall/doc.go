// Package firewall is waggle's XDP firewall and DDoS dropper: one
// clang-built program (bpf/firewall.c, committed as bpf/firewall.o) that
// runs attached to an interface in the kernel and, unchanged, in user space
// under waggle, where it replays captures and explains its verdicts.
//
// A YAML Config names rules (allow and deny lists of CIDRs, inline or from
// plain CIDR files and ipset save files, with an optional protocol and
// destination-port range) and limits (per-source packets/s and bytes/s,
// SYN rate, UDP amplification sources, an under-attack mark). Compile turns
// it into the maps' contents, in the C structs' layout, which Compiled.Fill
// writes into waggle's maps and cilium/ebpf's alike. Every verdict names
// the rule that decided it: fixed rules (RuleDefault ... RuleRateBPS) and
// the configuration's, whose ids are stable (given in the file, or assigned
// in order from RuleFirstUser).
//
// Replayer runs the program over packets with their capture timestamps as
// the program's clock, so that rate limits decide the same way on every
// replay and in the kernel's BPF_PROG_TEST_RUN; Replayer.Reload changes
// its maps in place. Apply (Linux) attaches it to an interface's XDP hook,
// pinned, and reloads it in place; OpenPinned (counters, top talkers, the
// attack state), PinnedCounters and CaptureDropped read what it does, and
// Collector exports the same to Prometheus, read at each scrape. With
// Options.SampleAll every verdict is sampled, not only drops, with its
// rule, its action and the kernel's clock: CaptureAll reads them, and a
// replay of the packets with those times (Sample.Timestamp) gives the
// kernel's verdicts, counters and state exactly, rate limits included.
//
// SYN protection is SYN cookies from XDP while under attack
// (Options.SYNCookies: a SYN is answered with a cookie SYN-ACK, XDP_TX,
// RuleSYNCookie; an ACK whose cookie checks passes, RuleSYNCookieACK), or
// where the kernel lacks the helpers the per-source SYN rate (Limits.SYN);
// Apply and Pinned.SYNProtection say which is in force. The cookies are
// the kernel's (bpf_tcp_raw_gen_syncookie_ipv4 and _ipv6, its secret), so
// the host's stack accepts the ACKs when it runs with
// net.ipv4.tcp_syncookies=2; in a replay they are waggle's.
//
// The program stays far from the verifier's limits: Linux 6.18 processes
// 30,594 instructions of it (waggle load; fewer with the cookie helpers
// left out, as on a kernel without them), waggle's verifier 28,120
// (waggle verify).
package firewall
