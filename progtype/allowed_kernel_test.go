//go:build linux

package progtype_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// allowedKinds are the program types and attach types whose helper sets
// are compared with the kernel's: every Kind LookupAttach makes, user hooks
// excepted. Where LookupAttach takes any attach type (XDP, kprobes, the
// socket buffer types), the ones named here are those Linux's
// get_func_proto looks at; TestKernel_allowedHelpers checks that every
// attach type cgroup_sock and cgroup_sock_addr accept is listed.
var allowedKinds = []struct {
	typ    progtype.Type
	attach progtype.AttachType
}{
	{progtype.SocketFilter, 0},
	{progtype.Kprobe, 0},
	{progtype.Kprobe, progtype.AttachKprobeMulti},
	{progtype.Kprobe, progtype.AttachUprobeMulti},
	{progtype.SchedCLS, 0},
	{progtype.SchedACT, 0},
	{progtype.Tracepoint, 0},
	{progtype.XDP, 0},
	{progtype.XDP, progtype.AttachXDPDevMap},
	{progtype.XDP, progtype.AttachXDPCPUMap},
	{progtype.XDP, progtype.AttachXDP},
	{progtype.PerfEvent, 0},
	{progtype.CgroupSKB, 0},
	{progtype.CgroupSKB, progtype.AttachCgroupInetEgress},
	{progtype.CgroupSock, progtype.AttachCgroupInetSockCreate},
	{progtype.CgroupSock, progtype.AttachCgroupInetSockRelease},
	{progtype.CgroupSock, progtype.AttachCgroupInet4PostBind},
	{progtype.CgroupSock, progtype.AttachCgroupInet6PostBind},
	{progtype.LWTIn, 0},
	{progtype.LWTOut, 0},
	{progtype.LWTXmit, 0},
	{progtype.LWTSeg6Local, 0},
	{progtype.SockOps, 0},
	{progtype.SockOps, progtype.AttachCgroupSockOps},
	{progtype.RawTracepoint, 0},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet4Bind},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet6Bind},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet6Connect},
	{progtype.CgroupSockAddr, progtype.AttachCgroupUDP4Sendmsg},
	{progtype.CgroupSockAddr, progtype.AttachCgroupUDP6Sendmsg},
	{progtype.CgroupSockAddr, progtype.AttachCgroupUDP4Recvmsg},
	{progtype.CgroupSockAddr, progtype.AttachCgroupUDP6Recvmsg},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet4Getpeer},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet6Getpeer},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet4Getsock},
	{progtype.CgroupSockAddr, progtype.AttachCgroupInet6Getsock},
	{progtype.FlowDissector, progtype.AttachFlowDissector},
	{progtype.SkLookup, progtype.AttachSkLookup},
}

// helperVerdict is what the kernel's verifier says about a call to a
// helper in a program type.
type helperVerdict uint8

const (
	helperHas     helperVerdict = iota // the type has the helper (the load may still fail on its arguments)
	helperRefused                      // the type does not have it
	helperUnknown                      // "invalid func unknown#N": beyond the kernel's last helper
	helperGPLOnly                      // "cannot call GPL-restricted function from non-GPL compatible program"
)

// helperCallProgram calls helper id with whatever r1-r5 hold and returns 1
// (a value every type accepts). The verifier decides whether the type has
// the helper before it looks at the arguments.
func helperCallProgram(id int32) []isa.Instruction {
	mov := isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov)
	return []isa.Instruction{
		{Op: isa.OpCall, Imm: id},
		{Op: mov, Dst: isa.R0, Imm: 1},
		{Op: isa.OpExit},
	}
}

// errNoSuchProgram is a load the kernel refuses before its verifier runs:
// it loads no program of that type with that expected attach type
// (bpf_prog_load_check_attach).
var errNoSuchProgram = errors.New("the kernel loads no such program")

// kernelHelperVerdict loads a call to helper id into the kernel as a
// program of type typ with expected attach type attach and license lic,
// and classifies check_helper_call's (kernel/bpf/verifier.c) answer:
//
//   - "invalid func unknown#N": the id is past the kernel's last helper;
//   - "program of this type cannot use helper" (get_func_proto gave none;
//     "unknown func" before Linux 4.14): the type does not have it;
//   - "func ... not supported for program type" (check_get_func_ip): the
//     type has no bpf_get_func_ip, whatever the program passes;
//   - "cannot call GPL-restricted function": gpl_only, and lic is not GPL;
//   - anything else, a load or a complaint about the arguments, or "helper
//     call might sleep" (bpf_copy_from_user in a non-sleepable program):
//     the type has it.
func kernelHelperVerdict(typ progtype.Type, attach progtype.AttachType, id int32, lic string) (helperVerdict, string, error) {
	kp, err := kernel.Load(helperCallProgram(id), kernel.LoadOptions{
		Type: kernel.ProgType(typ), ExpectedAttachType: uint32(attach), License: lic,
		// A log on every load: a refusal is then one BPF_PROG_LOAD, not two,
		// and a small buffer is enough for three instructions.
		LogLevel: 1, LogSize: 1 << 12,
	})
	if err == nil {
		kp.Close()
		return helperHas, "loaded", nil
	}
	var ve *kernel.VerifierError
	if !errors.As(err, &ve) {
		return 0, "", err
	}
	if strings.TrimSpace(ve.Log) == "" {
		return 0, "", fmt.Errorf("%w: %v", errNoSuchProgram, err)
	}
	why := lastLine(ve.Log)
	switch {
	case strings.Contains(ve.Log, "invalid func "):
		return helperUnknown, why, nil
	case strings.Contains(ve.Log, "program of this type cannot use helper"), strings.Contains(ve.Log, "unknown func "),
		strings.Contains(ve.Log, "not supported for program type"):
		return helperRefused, why, nil
	case strings.Contains(ve.Log, "cannot call GPL-restricted function"):
		return helperGPLOnly, why, nil
	}
	return helperHas, why, nil
}

// lastKernelHelper returns the kernel's last helper id: the one before the
// first id its verifier calls "invalid func".
func lastKernelHelper(t *testing.T) int32 {
	t.Helper()
	for id := int32(1); id < 1024; id++ {
		v, why, err := kernelHelperVerdict(progtype.SocketFilter, 0, id, "")
		if err != nil {
			t.Fatalf("helper %d: %v", id, err)
		}
		if v == helperUnknown {
			if !strings.Contains(why, fmt.Sprintf("#%d", id)) {
				t.Fatalf("helper %d: the kernel says %q", id, why)
			}
			return id - 1
		}
	}
	t.Fatal("the kernel knows every helper id below 1024")
	return 0
}

// buildDependent is a helper some program types have in one kernel and not
// in another. waggle allows it (allowed.go models a distribution's kernel,
// and the newest); a kernel that refuses it is reported, not failed. A
// kernel that has a helper waggle refuses always fails the comparison.
type buildDependent struct {
	ids   []int32
	types []progtype.Type
	// since is the Linux version that gave the types the helper; zero for
	// a build option, which any version may lack.
	since [2]int
	why   string
}

// buildDependentHelpers are the helpers whose answer depends on the
// kernel's build: its config, its lockdown mode, or its version.
var buildDependentHelpers = []buildDependent{
	{ids: []int32{36}, types: []progtype.Type{progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.PerfEvent},
		why: "bpf_tracing_func_proto gives no bpf_probe_write_user when the kernel is locked down (security_locked_down(LOCKDOWN_BPF_WRITE_USER): lockdown=integrity, CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY, Secure Boot)"},
	{ids: []int32{58}, types: []progtype.Type{progtype.Kprobe},
		why: "kprobe_prog_func_proto has bpf_override_return only with CONFIG_BPF_KPROBE_OVERRIDE"},
	{ids: []int32{74, 75, 76}, types: []progtype.Type{progtype.LWTSeg6Local},
		why: "lwt_seg6local_func_proto has the seg6 helpers only with CONFIG_IPV6_SEG6_BPF"},
	{ids: []int32{15, 16, 17, 37, 55, 22, 109, 117, 141, 148, 156, 157, 176, 180, 191},
		types: []progtype.Type{progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.XDP,
			progtype.CgroupSKB, progtype.CgroupSock, progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit,
			progtype.LWTSeg6Local, progtype.SockOps, progtype.CgroupSockAddr, progtype.FlowDissector, progtype.SkLookup},
		since: [2]int{6, 16}, why: "bpf_base_func_proto has the current-task, signal, perf counter and stack helpers since Linux 6.16"},
	{ids: []int32{122}, types: []progtype.Type{progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB},
		since: [2]int{6, 13}, why: "the socket buffer types have bpf_get_netns_cookie since Linux 6.13"},
}

// buildDependentReason returns why typ may lack helper id on the running
// kernel (release is its version), or "".
func buildDependentReason(typ progtype.Type, id int32, release [2]int) string {
	for _, b := range buildDependentHelpers {
		if !slices.Contains(b.ids, id) || !slices.Contains(b.types, typ) {
			continue
		}
		if b.since != [2]int{} && (release[0] > b.since[0] || release[0] == b.since[0] && release[1] >= b.since[1]) {
			continue // this kernel is new enough to have it
		}
		return b.why
	}
	return ""
}

// kernelRelease returns the running kernel's major and minor version.
func kernelRelease(t *testing.T) [2]int {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var r [2]int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &r[0], &r[1]); err != nil {
		t.Fatalf("kernel release %q: %v", unix.ByteSliceToString(u.Release[:]), err)
	}
	return r
}

// sweepType is a program type the sweep compares, with the attach types
// it compares it with.
type sweepType struct {
	typ     progtype.Type
	attachs []progtype.AttachType
}

// helperSweepTypes returns the types of allowedKinds with their attach
// types there and, unless short, every other expected attach type below 64
// that LookupAttach takes for them (most types do not look at it; sock_ops
// does, for bpf_get_retval).
func helperSweepTypes(t *testing.T) []sweepType {
	t.Helper()
	var out []sweepType
	index := map[progtype.Type]int{}
	add := func(typ progtype.Type, a progtype.AttachType) {
		if _, err := progtype.LookupAttach(typ, a); err != nil {
			return
		}
		i, ok := index[typ]
		if !ok {
			i = len(out)
			index[typ] = i
			out = append(out, sweepType{typ: typ})
		}
		if !slices.Contains(out[i].attachs, a) {
			out[i].attachs = append(out[i].attachs, a)
		}
	}
	for _, ak := range allowedKinds {
		if _, err := progtype.LookupAttach(ak.typ, ak.attach); err != nil {
			t.Fatal(err)
		}
		add(ak.typ, ak.attach)
	}
	if !testing.Short() {
		for _, ak := range allowedKinds {
			for a := progtype.AttachType(0); a < 64; a++ {
				add(ak.typ, a)
			}
		}
	}
	return out
}

// attachList collects, for one finding, the attach types it holds for.
type attachList map[string][]progtype.AttachType

func (l attachList) add(msg string, a progtype.AttachType) { l[msg] = append(l[msg], a) }

// each calls f with every finding and its attach types, in order.
func (l attachList) each(f func(msg, attachs string)) {
	msgs := make([]string, 0, len(l))
	for m := range l {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		f(m, attachRanges(l[m]))
	}
}

// attachRanges writes attach types as ranges: "0-35,37-63".
func attachRanges(as []progtype.AttachType) string {
	slices.Sort(as)
	var parts []string
	for i := 0; i < len(as); {
		j := i
		for j+1 < len(as) && as[j+1] == as[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(uint32(as[i])))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", uint32(as[i]), uint32(as[j])))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// TestKernel_allowedHelpers loads, for every program type and attach type
// waggle has a Kind for and every helper id the kernel knows, a program
// calling that helper, and compares the verifier's answer (does this type
// have the helper?) with Kind.Allowed. For the helpers waggle implements
// it also compares their gpl_only with Proto.GPLOnly, loading them with a
// license that is not GPL-compatible. With -short it checks allowedKinds
// only, on the first helpers and every seventh.
func TestKernel_allowedHelpers(t *testing.T) {
	mustKernel(t)
	if err := kernel.ProgramTypeSupported(kernel.ProgType(progtype.SocketFilter)); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	// Every attach type cgroup_sock and cgroup_sock_addr take is listed.
	listed := map[[2]uint32]bool{}
	for _, ak := range allowedKinds {
		listed[[2]uint32{uint32(ak.typ), uint32(ak.attach)}] = true
	}
	for _, typ := range []progtype.Type{progtype.CgroupSock, progtype.CgroupSockAddr} {
		for a := progtype.AttachType(1); a < 64; a++ {
			if _, err := progtype.LookupAttach(typ, a); err == nil && !listed[[2]uint32{uint32(typ), uint32(a)}] {
				t.Errorf("%s with attach type %d has a Kind and is not in allowedKinds", typ, a)
			}
		}
	}

	release := kernelRelease(t)
	last := lastKernelHelper(t)
	types := helperSweepTypes(t)
	ids := make([]int32, 0, last)
	for id := int32(1); id <= last; id++ {
		if helpers.Name(id) == "" {
			t.Errorf("helpers.Name(%d) is empty: the kernel has helpers up to %d", id, last)
		}
		if !testing.Short() || id%7 == 0 || id <= 8 {
			ids = append(ids, id)
		}
	}

	var kinds, total, has, gpl atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d Kinds, %d (type, attach, helper) triples compared for helpers 1..%d (Linux %d.%d): %d have the helper; %d compared for gpl_only",
			kinds.Load(), total.Load(), last, release[0], release[1], has.Load(), gpl.Load())
	})
	for _, st := range types {
		t.Run(st.typ.String(), func(t *testing.T) {
			t.Parallel()
			if err := kernel.ProgramTypeSupported(kernel.ProgType(st.typ)); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
			mismatch, build := attachList{}, attachList{}
			var noProgram []progtype.AttachType
			for _, a := range st.attachs {
				k, err := progtype.LookupAttach(st.typ, a)
				if err != nil {
					t.Fatal(err)
				}
				// Linux's answer for an id past its last, as waggle's.
				for id := last + 1; id < 256; id++ {
					if k.Allowed(id) {
						mismatch.add(fmt.Sprintf("Allowed(%d), an id past the kernel's last helper (%d)", id, last), a)
					}
				}
				gplOnly := map[int32]bool{}
				for _, d := range helpers.Generic() {
					gplOnly[d.ID] = d.Proto.GPLOnly
				}
				for _, d := range k.Helpers() {
					gplOnly[d.ID] = d.Proto.GPLOnly
				}
				kinds.Add(1)
				for _, id := range ids {
					v, why, err := kernelHelperVerdict(st.typ, a, id, "")
					if errors.Is(err, errNoSuchProgram) && !listed[[2]uint32{uint32(st.typ), uint32(a)}] {
						noProgram = append(noProgram, a)
						kinds.Add(-1)
						break
					}
					if err != nil {
						t.Fatalf("attach type %d, helper %d: %v", a, id, err)
					}
					total.Add(1)
					name := fmt.Sprintf("bpf_%s (%d)", helpers.Name(id), id)
					if v == helperUnknown || v == helperGPLOnly {
						mismatch.add(fmt.Sprintf("%s: the kernel says %q", name, why), a)
						continue
					}
					kHas, wHas := v == helperHas, k.Allowed(id)
					if kHas {
						has.Add(1)
					}
					switch {
					case kHas == wHas:
					case !kHas && buildDependentReason(st.typ, id, release) != "":
						build.add(fmt.Sprintf("%s: %s", name, buildDependentReason(st.typ, id, release)), a)
					case kHas:
						mismatch.add(fmt.Sprintf("%s: the kernel has it (%s), waggle does not allow it", name, why), a)
					default:
						mismatch.add(fmt.Sprintf("%s: waggle allows it, the kernel does not have it (%s)", name, why), a)
					}
					want, implemented := gplOnly[id]
					if !kHas || !wHas || !implemented {
						continue
					}
					v, why, err = kernelHelperVerdict(st.typ, a, id, "MIT")
					if err != nil {
						t.Fatalf("attach type %d, helper %d: %v", a, id, err)
					}
					gpl.Add(1)
					if got := v == helperGPLOnly; got != want {
						mismatch.add(fmt.Sprintf("%s: gpl_only in the kernel %v (%s), Proto.GPLOnly %v", name, got, why, want), a)
					}
				}
			}
			mismatch.each(func(msg, attachs string) { t.Errorf("%s (attach types %s)", msg, attachs) })
			build.each(func(msg, attachs string) {
				t.Logf("build-dependent, this kernel refuses %s (attach types %s)", msg, attachs)
			})
			if len(noProgram) > 0 {
				t.Logf("the kernel loads no %s program with expected attach types %s, which LookupAttach takes (not compared)", st.typ, attachRanges(noProgram))
			}
		})
	}
}

// TestKernel_newHelpers runs, in a network namespace of its own, the
// helpers the socket buffer types and XDP gained after Linux 6.12 and
// waggle implements: bpf_get_netns_cookie of the context (the packet's
// socket's namespace; the test run's socket is in the current one) and of
// NULL (the initial namespace), bpf_get_current_uid_gid and
// bpf_get_current_comm (the test run's current task is this thread; in
// waggle, Input.Task).
func TestKernel_newHelpers(t *testing.T) {
	mustKernel(t)
	if os.Geteuid() != 0 {
		t.Skip("a network namespace of its own needs root")
	}
	task := func(t *testing.T) *progtype.Task {
		comm, err := os.ReadFile("/proc/thread-self/comm")
		if err != nil {
			t.Fatal(err)
		}
		return &progtype.Task{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Comm: strings.TrimSuffix(string(comm), "\n")}
	}
	const taskSrc = `
		call 15
		r7 = r0
		r1 = r10
		r1 += -16
		r2 = 16
		call 16
		r7 ^= r0
		r1 = *(u64 *)(r10 - 16)
		r7 ^= r1
		r1 = *(u64 *)(r10 - 8)
		r1 <<= 1
		r7 ^= r1
		r0 = r7
		r0 >>= 32
		r7 ^= r0`
	cases := []struct {
		typ progtype.Type
		src string
	}{
		{progtype.XDP, taskSrc + `
		r0 = r7
		exit`},
	}
	for _, typ := range []progtype.Type{progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB} {
		cases = append(cases, struct {
			typ progtype.Type
			src string
		}{typ, `
		r6 = r1
		call 122
		*(u32 *)(r6 + 48) = r0
		r0 >>= 32
		*(u32 *)(r6 + 52) = r0
		r1 = 0
		call 122
		*(u32 *)(r6 + 56) = r0
		r0 >>= 32
		*(u32 *)(r6 + 60) = r0` + taskSrc + `
		*(u32 *)(r6 + 64) = r7
		r0 = 1
		exit`})
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread enters a namespace of its own and is never unlocked:
		// the runtime ends it with the goroutine.
		runtime.LockOSThread()
		initCookie, err := netnsCookieOfThread()
		if err != nil {
			t.Error(err)
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		cookie, err := netnsCookieOfThread()
		if err != nil || cookie == initCookie {
			t.Errorf("the new namespace's cookie %d (%v), the first one's %d", cookie, err, initCookie)
			return
		}
		host, err := netenv.New(&netenv.Config{NetnsCookie: cookie, InitNetnsCookie: initCookie})
		if err != nil {
			t.Error(err)
			return
		}
		tk := task(t)
		for _, c := range cases {
			k := mustKind(t, c.typ)
			prog := mustParse(t, c.src)
			if err := kernel.HelpersSupported(kernel.ProgType(c.typ), prog); err != nil {
				t.Logf("%s: not compared: %v", c.typ, err)
				continue
			}
			kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(c.typ)})
			if err != nil {
				t.Errorf("%s: kernel refused the program: %+v", c.typ, err)
				continue
			}
			inputs := skbInputs()[:3]
			if c.typ == progtype.XDP {
				inputs = xdpInputs()[:2]
			}
			for _, in := range inputs {
				in.in.Net, in.in.Task = host, tk
				diffRun(t, k, prog, kp, c.typ.String()+"/"+in.name, in.in)
			}
			kp.Close()
		}
	}()
	<-done
}

// netnsCookieOfThread is the cookie of the calling thread's network
// namespace (SO_NETNS_COOKIE).
func netnsCookieOfThread() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}
