package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/kernel"
)

// attachResult is what "waggle attach --json" prints.
type attachResult struct {
	Program   string   `json:"program"`
	Section   string   `json:"section"`
	Hook      string   `json:"hook"` // the hook's kind: xdp, tcx, tracepoint, ...
	Target    string   `json:"target"`
	ProgramID uint32   `json:"program_id,omitempty"`
	Links     []uint32 `json:"links,omitempty"` // bpf link ids
	Pinned    []string `json:"pinned,omitempty"`
	// Held is how the command ended without --pin: "interrupted" or
	// "--duration"; the program was detached then.
	Held string `json:"held,omitempty"`
	// Packets and Bytes are what a socket filter let through to its
	// socket while it was held.
	Packets *int `json:"packets,omitempty"`
	Bytes   *int `json:"bytes,omitempty"`
}

// hookFlags are the flags of "waggle attach" that name a hook.
type hookFlags struct {
	xdp, mode, tcx, direction  string
	tcLegacy                   bool
	tracepoint, rawTP          string
	uprobe, uretprobe          string
	pid                        int
	perfEvent                  bool
	freq                       uint64
	cgroup, attachType, socket string
	kprobe, kretprobe, fentry  string
	fexit, lsm                 string
	cmd                        *cobra.Command
}

// hook returns the hook the flags name, HookNone if none (the section
// name says then).
func (f *hookFlags) hook() (kernel.Hook, error) {
	var h kernel.Hook
	var set []string
	flag := func(name string) bool {
		if f.cmd.Flags().Changed(name) {
			set = append(set, "--"+name)
			return true
		}
		return false
	}
	var err error
	if flag("xdp") {
		h = kernel.Hook{Kind: kernel.HookXDP, Interface: f.xdp}
	}
	if flag("tcx") {
		h = kernel.Hook{Kind: kernel.HookTCX, Interface: f.tcx, TCLegacy: f.tcLegacy}
	}
	if flag("tracepoint") {
		g, n, ok := strings.Cut(f.tracepoint, "/")
		if !ok || g == "" || n == "" {
			return h, fmt.Errorf("--tracepoint %q: want GROUP/NAME, e.g. syscalls/sys_enter_openat", f.tracepoint)
		}
		h = kernel.Hook{Kind: kernel.HookTracepoint, Group: g, Name: n}
	}
	if flag("raw-tp") {
		h = kernel.Hook{Kind: kernel.HookRawTracepoint, Name: f.rawTP}
	}
	for _, u := range []struct {
		name, val string
		kind      kernel.HookKind
	}{{"uprobe", f.uprobe, kernel.HookUprobe}, {"uretprobe", f.uretprobe, kernel.HookUretprobe}} {
		if flag(u.name) {
			bin, sym, err := kernel.ParseUprobeTarget(u.val)
			if err != nil {
				return h, fmt.Errorf("--%s: %w", u.name, err)
			}
			h = kernel.Hook{Kind: u.kind, Binary: bin, Symbol: sym.Symbol, Offset: sym.Offset, PID: f.pid}
		}
	}
	if flag("perf-event") {
		h = kernel.Hook{Kind: kernel.HookPerfEvent, Frequency: f.freq}
	}
	if flag("cgroup") {
		h = kernel.Hook{Kind: kernel.HookCgroup, CgroupPath: f.cgroup, CgroupAttach: f.attachType}
	}
	if flag("socket") {
		h = kernel.Hook{Kind: kernel.HookSocket, Interface: f.socket}
	}
	for _, k := range []struct {
		name, val string
		kind      kernel.HookKind
	}{{"kprobe", f.kprobe, kernel.HookKprobe}, {"kretprobe", f.kretprobe, kernel.HookKretprobe}} {
		if flag(k.name) {
			h = kernel.Hook{Kind: k.kind}
			sym, off, _ := strings.Cut(k.val, "+")
			h.Symbol = sym
			if off != "" {
				if _, err := fmt.Sscan(off, &h.Offset); err != nil {
					return h, fmt.Errorf("--%s %q: offset %q is not a number", k.name, k.val, off)
				}
			}
		}
	}
	for _, k := range []struct {
		name, val string
		kind      kernel.HookKind
	}{{"fentry", f.fentry, kernel.HookFentry}, {"fexit", f.fexit, kernel.HookFexit}, {"lsm", f.lsm, kernel.HookLSM}} {
		if flag(k.name) {
			h = kernel.Hook{Kind: k.kind, Name: k.val}
		}
	}
	if len(set) > 1 {
		return h, fmt.Errorf("%s: give one hook", strings.Join(set, " and "))
	}
	// The flags that qualify a hook, with the hook they belong to.
	if f.cmd.Flags().Changed("mode") {
		if h.Kind != kernel.HookXDP {
			return h, errors.New("--mode goes with --xdp")
		}
		if h.XDPMode, err = kernel.ParseXDPMode(f.mode); err != nil {
			return h, fmt.Errorf("--mode: %w", err)
		}
	}
	if f.cmd.Flags().Changed("direction") {
		if h.Kind != kernel.HookTCX {
			return h, errors.New("--direction goes with --tcx")
		}
		if h.Direction, err = kernel.ParseDirection(f.direction); err != nil {
			return h, fmt.Errorf("--direction: %w", err)
		}
	}
	for _, q := range []struct {
		flag, with string
		kinds      []kernel.HookKind
	}{
		{"tc-legacy", "--tcx", []kernel.HookKind{kernel.HookTCX}},
		{"pid", "--uprobe or --uretprobe", []kernel.HookKind{kernel.HookUprobe, kernel.HookUretprobe}},
		{"freq", "--perf-event", []kernel.HookKind{kernel.HookPerfEvent}},
		{"attach-type", "--cgroup", []kernel.HookKind{kernel.HookCgroup}},
	} {
		if f.cmd.Flags().Changed(q.flag) && !slices.Contains(q.kinds, h.Kind) {
			return h, fmt.Errorf("--%s goes with %s", q.flag, q.with)
		}
	}
	return h, nil
}

func (e *env) attachCmd() *cobra.Command {
	var (
		program, pin string
		asJSON       bool
		duration     time.Duration
		hf           hookFlags
	)
	cmd := &cobra.Command{
		Use:   "attach OBJECT",
		Short: "Load an object into the kernel and attach one of its programs to a hook (root)",
		Long: `Load an ELF object into the running kernel and attach one of its programs
(--program, or the only one) to a hook, through a bpf link.

The hook comes from the program's section name, by libbpf's conventions
(xdp, tcx/ingress, tracepoint/syscalls/sys_enter_openat, raw_tp/sys_enter,
uprobe/BIN:SYM, perf_event, cgroup_skb/egress, cgroup/sock_create, socket,
kprobe/SYM, fentry/F, lsm/HOOK), or from one of the hook flags, which win;
what a section name cannot say (an interface, a cgroup, a frequency) comes
from the flags:
  --xdp IF [--mode generic|driver|offload]
  --tcx IF [--direction ingress|egress] [--tc-legacy]
  --tracepoint GROUP/NAME      --raw-tp NAME
  --uprobe BIN:SYM[+OFF] | --uretprobe BIN:SYM[+OFF] [--pid N]
                               (BIN:OFF: an offset in the file)
  --perf-event --freq HZ       the CPU clock sampled on every CPU
  --cgroup DIR [--attach-type ingress|egress|sock_create|connect4|...]
  --socket IF                  a packet socket on IF, filtered by the
                               program (SO_ATTACH_BPF); it lives as long as
                               the command, which then says what passed
  --kprobe SYM[+OFF] | --kretprobe SYM | --fentry F | --fexit F | --lsm HOOK
A hook the kernel lacks is refused, naming the probe that failed (this
kernel may have no kprobe PMU, or refuse fentry and LSM programs); nothing
falls back to a weaker hook, except TCX, which on kernels before 6.6 is a
tc filter under a clsact qdisc (--tc-legacy asks for that anywhere).

With --pin DIR (a new directory on a bpffs, e.g. /sys/fs/bpf/NAME), the
link, the program and the maps are pinned there and the program stays
attached after the command ends:
  DIR/link        the link (DIR/link_cpuN for perf_event, one per CPU;
                  DIR/tc_IF_DIR_PRIO_HANDLE for a clsact filter)
  DIR/prog        the program
  DIR/maps/NAME   each map, dots in its name made underscores
"waggle detach DIR" detaches it and removes the pins. Without --pin, the
command holds the program attached until interrupted (Ctrl-C) or
--duration, then detaches it.`,
		Example: `  waggle attach examples/counter/counter.o --xdp veth0 --pin /sys/fs/bpf/counter
  waggle map dump /sys/fs/bpf/counter/maps/sources
  waggle detach /sys/fs/bpf/counter
  waggle attach prog.o --program on_open --tracepoint syscalls/sys_enter_openat --pin /sys/fs/bpf/opens
  waggle attach examples/sockfilter/filter.o --socket eth0 --duration 10s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hf.cmd = cmd
			h, err := hf.hook()
			if err != nil {
				return err
			}
			if pin != "" && duration != 0 {
				return errors.New("--duration holds a program attached without --pin; a pinned one stays until waggle detach")
			}
			if pin != "" {
				if err := kernel.CheckPinDir(pin); err != nil {
					return err
				}
			}
			a, err := kernel.AttachFile(args[0], kernel.AttachOptions{Program: program, Hook: h})
			if err != nil {
				var ve *ebpf.VerifierError
				if errors.As(err, &ve) {
					fmt.Fprintf(e.stderr, "%+v\n", ve)
				}
				return err
			}
			defer a.Close()
			res := attachResult{Program: a.Program, Section: a.Section, Hook: a.Hook.Kind.String(), Target: a.Hook.String()}
			if info, err := a.Collection.Programs[a.Program].Info(); err == nil {
				id, _ := info.ID()
				res.ProgramID = uint32(id)
			}
			for _, l := range a.Links() {
				if info, err := l.Info(); err == nil {
					res.Links = append(res.Links, uint32(info.ID))
				}
			}
			if pin != "" {
				if res.Pinned, err = a.Pin(pin); err != nil {
					return err
				}
				return e.printAttach(&res, asJSON)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			if !asJSON {
				fmt.Fprintf(e.stdout, "attached %s (section %s) to %s, program id %d; holding it until interrupted (Ctrl-C detaches)\n", res.Program, res.Section, res.Target, res.ProgramID)
			}
			var counted func() (int, int)
			if a.Socket() >= 0 {
				counted = drainSocket(ctx, a.Socket())
			}
			<-ctx.Done()
			res.Held = "interrupted"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				res.Held = "--duration"
			}
			if counted != nil {
				p, b := counted()
				res.Packets, res.Bytes = &p, &b
			}
			if err := a.Close(); err != nil {
				return fmt.Errorf("detach: %w", err)
			}
			if asJSON {
				return e.printAttach(&res, true)
			}
			if res.Packets != nil {
				fmt.Fprintf(e.stdout, "%d packets (%d bytes) passed the filter\n", *res.Packets, *res.Bytes)
			}
			fmt.Fprintf(e.stdout, "detached (%s)\n", res.Held)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&program, "program", "", "the object's program to attach (default: the only one)")
	f.StringVar(&pin, "pin", "", "pin the link, program and maps in this new `DIR` on a bpffs, so the program stays attached")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.DurationVar(&duration, "duration", 0, "without --pin: detach after this long instead of at Ctrl-C")
	f.StringVar(&hf.xdp, "xdp", "", "attach to the XDP hook of interface `IF`")
	f.StringVar(&hf.mode, "mode", "", "XDP mode: generic, driver or offload (default: driver if the interface has it, else generic)")
	f.StringVar(&hf.tcx, "tcx", "", "attach to the tc hook (TCX) of interface `IF`")
	f.StringVar(&hf.direction, "direction", "", "tc direction: ingress or egress (default: the section's)")
	f.BoolVar(&hf.tcLegacy, "tc-legacy", false, "attach a tc program as a filter under a clsact qdisc, not through TCX")
	f.StringVar(&hf.tracepoint, "tracepoint", "", "attach to tracepoint `GROUP/NAME`")
	f.StringVar(&hf.rawTP, "raw-tp", "", "attach to raw tracepoint `NAME`")
	f.StringVar(&hf.uprobe, "uprobe", "", "attach to the entry of `BIN:SYM[+OFF]` (or BIN:OFF)")
	f.StringVar(&hf.uretprobe, "uretprobe", "", "attach to the return of `BIN:SYM`")
	f.IntVar(&hf.pid, "pid", 0, "uprobes: only in this process")
	f.BoolVar(&hf.perfEvent, "perf-event", false, "attach to the CPU clock, sampled on every CPU at --freq")
	f.Uint64Var(&hf.freq, "freq", 0, "perf_event sampling frequency in `HZ`")
	f.StringVar(&hf.cgroup, "cgroup", "", "attach to the cgroup v2 directory `DIR`")
	f.StringVar(&hf.attachType, "attach-type", "", "cgroup hook: ingress, egress, sock_create, sock_release, post_bind4, connect4, ... (default: the section's)")
	f.StringVar(&hf.socket, "socket", "", "attach a socket filter to a packet socket on interface `IF` (held, never pinned)")
	f.StringVar(&hf.kprobe, "kprobe", "", "attach to the entry of kernel function `SYM[+OFF]`")
	f.StringVar(&hf.kretprobe, "kretprobe", "", "attach to the return of kernel function `SYM`")
	f.StringVar(&hf.fentry, "fentry", "", "attach to the entry of kernel function `F` (BPF trampoline)")
	f.StringVar(&hf.fexit, "fexit", "", "attach to the return of kernel function `F` (BPF trampoline)")
	f.StringVar(&hf.lsm, "lsm", "", "attach to LSM hook `HOOK`")
	return cmd
}

func (e *env) printAttach(res *attachResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(e.stdout, "attached %s (section %s) to %s, program id %d", res.Program, res.Section, res.Target, res.ProgramID)
	if len(res.Links) > 0 {
		fmt.Fprintf(e.stdout, ", link %s", joinIDs(res.Links))
	}
	fmt.Fprintln(e.stdout)
	for _, p := range res.Pinned {
		fmt.Fprintf(e.stdout, "  pinned %s\n", p)
	}
	return nil
}

func joinIDs(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

func (e *env) detachCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "detach DIR",
		Short: "Detach a program waggle attach --pin pinned, and remove its pins (root)",
		Long: `Detach the program "waggle attach --pin DIR" attached: its link is detached
(even if another process holds it), a clsact filter deleted, and the pins
of the link, the program and the maps removed, with DIR. A directory
holding anything waggle attach does not pin is refused, untouched.`,
		Example: `  waggle detach /sys/fs/bpf/counter`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			removed, err := kernel.Detach(args[0])
			if asJSON {
				out := map[string]any{"detached": args[0], "removed": removed}
				if err != nil {
					out["error"] = err.Error()
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(out); jerr != nil {
					return jerr
				}
				if err != nil {
					return exitError{code: 1}
				}
				return nil
			}
			for _, p := range removed {
				fmt.Fprintf(e.stdout, "removed %s\n", p)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "detached %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
