//go:build linux

package progtype_test

import (
	"fmt"
	"maps"
	"os"
	osexec "os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/progtype"
)

// linuxTarball is Debian's linux-source-6.12 package, the source waggle's
// helper prototypes are checked against.
const linuxTarball = "/usr/src/linux-source-6.12.tar.xz"

// protoDiffs are the differences between waggle's helper prototypes and
// Linux 6.12's that are known and kept, keyed as the test reports them
// ("helper: field"), with the reason. The test fails when one stops
// differing, so that the list stays true.
var protoDiffs = map[string]string{
	"map_lookup_elem: acquire": "is_acquire_function: only for sockmap and sockhash, which depends on the map; Proto.Acquire documents it",
	"get_stack: arg2_type": "6.12's bpf_get_stack_proto_raw_tp declares the buffer MEM_RDONLY though the helper writes it; " +
		"waggle has one get_stack for every tracing type, with the other variants' writable buffer",
}

// kernelProto is one `struct bpf_func_proto NAME = { ... }` of the kernel's
// source: its fields as written.
type kernelProto struct {
	name   string
	fields map[string]string
}

// kernelSource is the text of the kernel files that define helper
// prototypes and the verifier's knowledge of helper ids.
func kernelSource(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(linuxTarball); err != nil {
		t.Skipf("the kernel's helper prototypes are read from %s (Debian package linux-source-6.12): %v", linuxTarball, err)
	}
	out, err := readKernelSource()
	if err != nil {
		t.Fatalf("reading %s: %v", linuxTarball, err)
	}
	return out
}

// readKernelSource unpacks the files once for the tests of the package.
var readKernelSource = sync.OnceValues(func() (string, error) {
	out, err := osexec.Command("tar", "-xJOf", linuxTarball, "--wildcards",
		"linux-source-6.12/kernel/bpf/*.c", "linux-source-6.12/net/core/*.c", "linux-source-6.12/kernel/trace/bpf_trace.c").Output()
	return string(out), err
})

var (
	protoDefRE   = regexp.MustCompile(`(?m)^(?:static\s+)?(?:const\s+)?struct bpf_func_proto\s+(\w+)\s*(?:__\w+\s*)?=\s*\{((?s:.*?))\n\};`)
	protoFieldRE = regexp.MustCompile(`\.(\w+)\s*=\s*([^,]+?)\s*,?\s*(?:/\*.*?\*/)?\s*$`)
	caseRE       = regexp.MustCompile(`case BPF_FUNC_(\w+):`)
	protoRefRE   = regexp.MustCompile(`&(\w+)`)
	funcIDRE     = regexp.MustCompile(`BPF_FUNC_(\w+)`)
)

// parseProtos returns the prototypes the source defines, by variable name.
func parseProtos(src string) map[string]kernelProto {
	protos := map[string]kernelProto{}
	for _, m := range protoDefRE.FindAllStringSubmatch(src, -1) {
		p := kernelProto{name: m[1], fields: map[string]string{}}
		for _, line := range strings.Split(m[2], "\n") {
			if f := protoFieldRE.FindStringSubmatch(strings.TrimSpace(line)); f != nil {
				p.fields[f[1]] = strings.TrimSpace(f[2])
			}
		}
		protos[p.name] = p
	}
	return protos
}

// parseCases returns, by helper name, the prototypes the get_func_proto
// functions return for it: the references after its case labels, up to
// the next case or default.
func parseCases(src string, protos map[string]kernelProto) map[string][]string {
	out := map[string][]string{}
	idx := caseRE.FindAllStringSubmatchIndex(src, -1)
	for i := 0; i < len(idx); {
		// A run of labels shares the body after the last one.
		j := i
		for j+1 < len(idx) && strings.TrimSpace(src[idx[j][1]:idx[j+1][0]]) == "" {
			j++
		}
		end := len(src)
		if j+1 < len(idx) {
			end = idx[j+1][0]
		}
		body := src[idx[j][1]:end]
		for _, stop := range []string{"default:", "\n}\n"} {
			if k := strings.Index(body, stop); k >= 0 {
				body = body[:k]
			}
		}
		var refs []string
		for _, r := range protoRefRE.FindAllStringSubmatch(body, -1) {
			if _, ok := protos[r[1]]; ok {
				refs = append(refs, r[1])
			}
		}
		for k := i; k <= j; k++ {
			name := src[idx[k][2]:idx[k][3]]
			out[name] = append(out[name], refs...)
		}
		i = j + 1
	}
	return out
}

// kindFuncProto names each program type's get_func_proto function.
var kindFuncProto = map[progtype.Type]string{
	progtype.XDP: "xdp_func_proto", progtype.SocketFilter: "sk_filter_func_proto",
	progtype.SchedCLS: "tc_cls_act_func_proto", progtype.SchedACT: "tc_cls_act_func_proto",
	progtype.CgroupSKB: "cg_skb_func_proto", progtype.LWTIn: "lwt_in_func_proto",
	progtype.LWTOut: "lwt_out_func_proto", progtype.LWTXmit: "lwt_xmit_func_proto",
	progtype.LWTSeg6Local: "lwt_seg6local_func_proto", progtype.CgroupSock: "sock_filter_func_proto",
	progtype.CgroupSockAddr: "sock_addr_func_proto", progtype.SockOps: "sock_ops_func_proto",
	progtype.FlowDissector: "flow_dissector_func_proto", progtype.SkLookup: "sk_lookup_func_proto",
	progtype.Kprobe: "kprobe_prog_func_proto", progtype.Tracepoint: "tp_prog_func_proto",
	progtype.RawTracepoint: "raw_tp_prog_func_proto", progtype.PerfEvent: "pe_prog_func_proto",
}

var (
	funcProtoDefRE  = regexp.MustCompile(`(?m)^(?:static\s+)?(?:const\s+struct bpf_func_proto\s*\*\s*)?(\w+_func_proto)\(enum bpf_func_id func_id,[^)]*\)\s*\{`)
	funcProtoCallRE = regexp.MustCompile(`(\w+_func_proto)\(func_id`)
)

// parseFuncProtos returns the bodies of the get_func_proto functions by
// name.
func parseFuncProtos(src string) map[string]string {
	out := map[string]string{}
	for _, m := range funcProtoDefRE.FindAllStringSubmatchIndex(src, -1) {
		end := strings.Index(src[m[1]:], "\n}\n")
		if end < 0 {
			continue
		}
		out[src[m[2]:m[3]]] += src[m[1] : m[1]+end]
	}
	return out
}

// resolveProto returns the prototypes the get_func_proto function fn may
// return for the helper: those after its case label, or else those of
// the functions fn falls back to, in order.
func resolveProto(fns map[string]string, protos map[string]kernelProto, fn, helper string, depth int) []string {
	body, ok := fns[fn]
	if !ok || depth > 8 {
		return nil
	}
	if text, ok := caseGroups(body)[helper]; ok {
		var refs []string
		for _, r := range protoRefRE.FindAllStringSubmatch(text, -1) {
			if _, ok := protos[r[1]]; ok {
				refs = append(refs, r[1])
			}
		}
		for _, c := range funcProtoCallRE.FindAllStringSubmatch(text, -1) {
			refs = append(refs, resolveProto(fns, protos, c[1], helper, depth+1)...)
		}
		if len(refs) > 0 {
			return refs
		}
	}
	for _, c := range funcProtoCallRE.FindAllStringSubmatch(body, -1) {
		if c[1] == fn {
			continue
		}
		if refs := resolveProto(fns, protos, c[1], helper, depth+1); len(refs) > 0 {
			return refs
		}
	}
	return nil
}

// funcBody returns the body of the C function whose definition starts
// with head.
func funcBody(t *testing.T, src, head string) string {
	t.Helper()
	i := strings.Index(src, head)
	if i < 0 {
		t.Fatalf("the kernel's source has no %q", head)
	}
	j := strings.Index(src[i:], "\n}\n")
	return src[i : i+j]
}

// caseGroups returns the helper names of each run of case labels in body
// with the text of the body that follows it.
func caseGroups(body string) map[string]string {
	out := map[string]string{}
	idx := caseRE.FindAllStringSubmatchIndex(body, -1)
	for i, m := range idx {
		end := len(body)
		for k := i + 1; k < len(idx); k++ {
			if strings.TrimSpace(body[idx[k-1][1]:idx[k][0]]) != "" {
				end = idx[k][0]
				break
			}
		}
		text := body[m[1]:end]
		if k := strings.Index(text, "default:"); k >= 0 {
			text = text[:k]
		}
		out[body[m[2]:m[3]]] = text
	}
	return out
}

var argTokens = map[string]helpers.ArgType{
	"ARG_PTR_TO_STACK_OR_NULL":     helpers.ArgPtrToStackOrNull,
	"ARG_PTR_TO_UNINIT_MEM":        helpers.ArgPtrToUninitMem,
	"ARG_PTR_TO_FIXED_SIZE_MEM":    helpers.ArgPtrToFixedSizeMem,
	"ARG_PTR_TO_MAP_VALUE_OR_NULL": helpers.ArgPtrToMapValueOrNull,
	"ARG_PTR_TO_MEM_OR_NULL":       helpers.ArgPtrToMem | helpers.ArgMaybeNull,
	"ARG_PTR_TO_CTX_OR_NULL":       helpers.ArgPtrToCtx | helpers.ArgMaybeNull,
	"ARG_PTR_TO_SOCKET_OR_NULL":    helpers.ArgPtrToSocketOrNull,
	"ARG_PTR_TO_BTF_ID_OR_NULL":    helpers.ArgPtrToBTFIDOrNull,
	"PTR_MAYBE_NULL":               helpers.ArgMaybeNull,
	"MEM_RDONLY":                   helpers.ArgReadOnly,
	"MEM_UNINIT":                   helpers.ArgUninit,
	"OBJ_RELEASE":                  helpers.ArgRelease,
	"MEM_FIXED_SIZE":               helpers.ArgFixedSize,
	"MEM_ALIGNED":                  helpers.ArgAligned,
	"MEM_WRITE":                    helpers.ArgWrite,
	"DYNPTR_TYPE_LOCAL":            helpers.ArgDynptrLocal,
	"DYNPTR_TYPE_RINGBUF":          helpers.ArgDynptrRingbuf,
}

var retTokens = map[string]helpers.RetType{
	"RET_PTR_TO_MAP_VALUE_OR_NULL":   helpers.RetPtrToMapValueOrNull,
	"RET_PTR_TO_SOCKET_OR_NULL":      helpers.RetPtrToSocketOrNull,
	"RET_PTR_TO_TCP_SOCK_OR_NULL":    helpers.RetPtrToTCPSockOrNull,
	"RET_PTR_TO_SOCK_COMMON_OR_NULL": helpers.RetPtrToSockCommonOrNull,
	"RET_PTR_TO_RINGBUF_MEM_OR_NULL": helpers.RetPtrToRingbufMemOrNull,
	"RET_PTR_TO_BTF_ID_OR_NULL":      helpers.RetPtrToBTFIDOrNull,
	"RET_PTR_TO_BTF_ID_TRUSTED":      helpers.RetPtrToBTFIDTrusted,
	"RET_PTR_TO_DYNPTR_MEM_OR_NULL":  helpers.RetPtrToMem | helpers.RetMaybeNull,
	"PTR_MAYBE_NULL":                 helpers.RetMaybeNull,
	"MEM_RDONLY":                     helpers.RetReadOnly,
	"MEM_RINGBUF":                    helpers.RetRingbuf,
	"PTR_TRUSTED":                    helpers.RetTrusted,
}

func init() {
	for a := helpers.ArgDontCare; a <= helpers.ArgKptrXchgDest; a++ {
		argTokens[a.String()] = a
	}
	for r := helpers.RetInteger; r <= helpers.RetPtrToBTFID; r++ {
		retTokens[r.String()] = r
	}
}

// kernelArg translates an arg*_type expression; "" is ARG_DONTCARE.
func kernelArg(expr string) (helpers.ArgType, error) {
	var a helpers.ArgType
	for _, tok := range strings.Split(expr, "|") {
		if tok = strings.TrimSpace(tok); tok == "" {
			continue
		}
		v, ok := argTokens[tok]
		if !ok {
			return 0, fmt.Errorf("unknown argument type %q", tok)
		}
		a |= v
	}
	return a, nil
}

// kernelRet translates a ret_type expression.
func kernelRet(expr string) (helpers.RetType, error) {
	var r helpers.RetType
	for _, tok := range strings.Split(expr, "|") {
		if strings.TrimSpace(expr) == "" {
			return helpers.RetInteger, nil
		}
		v, ok := retTokens[strings.TrimSpace(tok)]
		if !ok {
			return 0, fmt.Errorf("unknown return type %q", tok)
		}
		r |= v
	}
	return r, nil
}

// kernelSizes are the sizes of the types arg*_size names.
var kernelSizes = map[string]uint32{
	"u8": 1, "u16": 2, "u32": 4, "int": 4, "u64": 8, "s64": 8, "long": 8, "__u64": 8,
	"struct bpf_pidns_info": 8, "struct iphdr": 20, "struct ipv6hdr": 40, "struct tcphdr": 20,
}

// kernelFacts is what verifier.c and filter.c know of helper ids besides
// their prototypes.
type kernelFacts struct {
	pktData   map[string]bool
	acquire   map[string]bool
	cast      map[string]bool
	bound     map[string]helpers.RetBound
	callbacks map[string]helpers.Callback
	// btfIDs are the structs of the BTF id lists (BTF_ID_LIST,
	// BTF_ID_LIST_SINGLE), by list and index.
	btfIDs map[string][]string
}

var (
	btfIDListSingleRE = regexp.MustCompile(`BTF_ID_LIST(?:_GLOBAL)?_SINGLE\((\w+),\s*struct,\s*(\w+)\)`)
	btfIDListRE       = regexp.MustCompile(`(?m)^BTF_ID_LIST\((\w+)\)\n((?:BTF_ID\(struct,\s*\w+\)\n)+)`)
	btfIDRE           = regexp.MustCompile(`BTF_ID\(struct,\s*(\w+)\)`)
	btfIDExprRE       = regexp.MustCompile(`^&(\w+)\[(\w+)\]$`)
)

// btfSockTypes and btfTracingTypes are include/linux/btf_ids.h's
// btf_sock_ids and btf_tracing_ids, which bpf_func_proto's btf ids index.
var (
	btfSockTypes = map[string]string{"INET": "inet_sock", "INET_CONN": "inet_connection_sock",
		"INET_REQ": "inet_request_sock", "INET_TW": "inet_timewait_sock", "REQ": "request_sock",
		"SOCK": "sock", "SOCK_COMMON": "sock_common", "TCP": "tcp_sock", "TCP_REQ": "tcp_request_sock",
		"TCP_TW": "tcp_timewait_sock", "TCP6": "tcp6_sock", "UDP": "udp_sock", "UDP6": "udp6_sock",
		"UNIX": "unix_sock", "MPTCP": "mptcp_sock", "SOCKET": "socket"}
	btfTracingTypes = map[string]string{"TASK": "task_struct", "FILE": "file", "VMA": "vm_area_struct"}
)

// btfStruct is the struct a bpf_func_proto btf id expression names
// ("&btf_sock_ids[BTF_SOCK_TYPE_TCP]"), "" for none, or false when it
// cannot be resolved.
func (f kernelFacts) btfStruct(expr string) (string, bool) {
	if expr == "" || expr == "BPF_PTR_POISON" {
		return "", true
	}
	m := btfIDExprRE.FindStringSubmatch(expr)
	if m == nil {
		return "", false
	}
	switch m[1] {
	case "btf_sock_ids":
		n, ok := btfSockTypes[strings.TrimPrefix(m[2], "BTF_SOCK_TYPE_")]
		return n, ok
	case "btf_tracing_ids":
		n, ok := btfTracingTypes[strings.TrimPrefix(m[2], "BTF_TRACING_TYPE_")]
		return n, ok
	}
	i, err := strconv.Atoi(m[2])
	if list := f.btfIDs[m[1]]; err != nil || i < 0 || i >= len(list) {
		return "", false
	}
	return f.btfIDs[m[1]][i], true
}

func parseFacts(t *testing.T, src string) kernelFacts {
	f := kernelFacts{pktData: map[string]bool{}, acquire: map[string]bool{}, cast: map[string]bool{}, bound: map[string]helpers.RetBound{}, callbacks: map[string]helpers.Callback{},
		btfIDs: map[string][]string{}}
	for _, m := range btfIDListSingleRE.FindAllStringSubmatch(src, -1) {
		f.btfIDs[m[1]] = []string{m[2]}
	}
	for _, m := range btfIDListRE.FindAllStringSubmatch(src, -1) {
		for _, id := range btfIDRE.FindAllStringSubmatch(m[2], -1) {
			f.btfIDs[m[1]] = append(f.btfIDs[m[1]], id[1])
		}
	}
	for name := range caseGroups(funcBody(t, src, "bool bpf_helper_changes_pkt_data(")) {
		f.pktData[name] = true
	}
	for _, m := range funcIDRE.FindAllStringSubmatch(funcBody(t, src, "static bool is_acquire_function("), -1) {
		f.acquire[m[1]] = true
	}
	for _, m := range funcIDRE.FindAllStringSubmatch(funcBody(t, src, "static bool is_ptr_cast_function("), -1) {
		f.cast[m[1]] = true
	}
	for name, body := range caseGroups(funcBody(t, src, "static int do_refine_retval_range(")) {
		switch {
		case strings.Contains(body, "msize_max_value"):
			f.bound[name] = helpers.RetErrnoOrSize
		case strings.Contains(body, "nr_cpu_ids"):
			f.bound[name] = helpers.RetCPU
		default:
			t.Errorf("do_refine_retval_range: unrecognised bound of %s: %s", name, body)
		}
	}
	// check_helper_call names the setter of each helper's callback state.
	call := funcBody(t, src, "static int check_helper_call(")
	setter := regexp.MustCompile(`(set_\w+_callback_state)\)`)
	for _, m := range setter.FindAllStringSubmatchIndex(call, -1) {
		ids := funcIDRE.FindAllStringSubmatch(call[:m[0]], -1)
		name := ids[len(ids)-1][1]
		f.callbacks[name] = parseCallback(t, src, call[m[2]:m[3]])
	}
	return f
}

var (
	cbCopyRE    = regexp.MustCompile(`callee->regs\[BPF_REG_(\d)\] = caller->regs\[BPF_REG_(\d)\];`)
	cbTypeRE    = regexp.MustCompile(`callee->regs\[BPF_REG_(\d)\]\.type = (\w+);`)
	cbDynptrRE  = regexp.MustCompile(`mark_dynptr_cb_reg\(env, &callee->regs\[BPF_REG_(\d)\]`)
	cbNotInitRE = regexp.MustCompile(`__mark_reg_not_init\(env, &callee->regs\[BPF_REG_(\d)\]\)`)
	cbRangeRE   = regexp.MustCompile(`callback_ret_range = retval_range\((-?\d+), (-?\d+)\)`)
)

// parseCallback reads the callback state a set_*_callback_state function
// sets up. Which argument is the callback comes from the prototype.
func parseCallback(t *testing.T, src, fn string) helpers.Callback {
	body := funcBody(t, src, "static int "+fn+"(")
	if strings.Contains(body, "map_set_for_each_callback_args") {
		body += funcBody(t, src, "int map_set_for_each_callback_args(")
	}
	var c helpers.Callback
	reg := func(s string) int { n, _ := strconv.Atoi(s); return n - 1 }
	for _, m := range cbCopyRE.FindAllStringSubmatch(body, -1) {
		c.Regs[reg(m[1])] = helpers.CallbackReg{Kind: helpers.CallbackCallerArg, Arg: reg(m[2])}
	}
	kinds := map[string]helpers.CallbackRegKind{
		"SCALAR_VALUE": helpers.CallbackScalar, "CONST_PTR_TO_MAP": helpers.CallbackMapPtr,
		"PTR_TO_MAP_KEY": helpers.CallbackMapKey, "PTR_TO_MAP_VALUE": helpers.CallbackMapValue,
		"PTR_TO_BTF_ID": helpers.CallbackBTFID,
	}
	for _, m := range cbTypeRE.FindAllStringSubmatch(body, -1) {
		k, ok := kinds[m[2]]
		if !ok {
			t.Errorf("%s: unrecognised register type %s", fn, m[2])
		}
		c.Regs[reg(m[1])].Kind = k
	}
	for _, m := range cbDynptrRE.FindAllStringSubmatch(body, -1) {
		c.Regs[reg(m[1])].Kind = helpers.CallbackDynptr
	}
	for _, m := range cbNotInitRE.FindAllStringSubmatch(body, -1) {
		if reg(m[1]) < 0 {
			continue // r0
		}
		if c.Regs[reg(m[1])].Kind != helpers.CallbackNotInit {
			t.Errorf("%s: r%s set and marked not init", fn, m[1])
		}
	}
	if m := cbRangeRE.FindStringSubmatch(body); m != nil {
		lo, _ := strconv.Atoi(m[1])
		hi, _ := strconv.Atoi(m[2])
		c.RetMin, c.RetMax = int32(lo), int32(hi)
	} else {
		t.Errorf("%s: no callback_ret_range", fn)
	}
	if strings.Contains(body, "in_async_callback_fn = true") {
		// check_return_code: async callbacks return 0.
		c.Async, c.RetMin, c.RetMax = true, 0, 0
	}
	return c
}

// compareProto returns the differences between waggle's d and the kernel's
// k, each as "field: waggle ... kernel ...", and the number of fields
// compared.
func compareProto(t *testing.T, d helpers.Def, k kernelProto, facts kernelFacts) (diffs []string, fields int) {
	p := d.Proto
	check := func(field string, same bool, w, kv any) {
		fields++
		if !same {
			diffs = append(diffs, fmt.Sprintf("%s: waggle %v, kernel %v", field, w, kv))
		}
	}
	gpl := k.fields["gpl_only"] == "true"
	check("gpl_only", p.GPLOnly == gpl, p.GPLOnly, gpl)
	ret, err := kernelRet(k.fields["ret_type"])
	if err != nil {
		t.Errorf("%s: %v", k.name, err)
	}
	check("ret_type", p.Ret == ret, p.Ret, ret)
	if kb, ok := facts.btfStruct(k.fields["ret_btf_id"]); !ok {
		t.Errorf("%s: unknown ret_btf_id %q", k.name, k.fields["ret_btf_id"])
	} else if kb != "" || p.RetBTF != "" {
		check("ret_btf_id", p.RetBTF == kb, p.RetBTF, kb)
	}
	for i := range 5 {
		n := strconv.Itoa(i + 1)
		ka, err := kernelArg(k.fields["arg"+n+"_type"])
		if err != nil {
			t.Errorf("%s: %v", k.name, err)
		}
		var wa helpers.ArgType
		if i < len(p.Args) {
			wa = p.Args[i]
		}
		check("arg"+n+"_type", wa == ka, wa, ka)
		if kb, ok := facts.btfStruct(k.fields["arg"+n+"_btf_id"]); !ok {
			t.Errorf("%s: unknown arg%s_btf_id %q", k.name, n, k.fields["arg"+n+"_btf_id"])
		} else if kb != "" || p.ArgBTF[i] != "" {
			check("arg"+n+"_btf_id", p.ArgBTF[i] == kb, p.ArgBTF[i], kb)
		}
		if ka&helpers.ArgFixedSize != 0 {
			expr := k.fields["arg"+n+"_size"]
			size, ok := kernelSizes[strings.TrimSuffix(strings.TrimPrefix(expr, "sizeof("), ")")]
			if !ok {
				t.Errorf("%s: unknown arg%s_size %q", k.name, n, expr)
			}
			check("arg"+n+"_size", p.ArgSize[i] == size, p.ArgSize[i], size)
		} else if p.ArgSize[i] != 0 {
			check("arg"+n+"_size", false, p.ArgSize[i], 0)
		}
	}
	check("changes_pkt_data", p.ChangesPktData == facts.pktData[d.Name], p.ChangesPktData, facts.pktData[d.Name])
	check("acquire", p.Acquire == facts.acquire[d.Name], p.Acquire, facts.acquire[d.Name])
	check("cast", p.Cast == facts.cast[d.Name], p.Cast, facts.cast[d.Name])
	check("ret_bound", p.RetBound == facts.bound[d.Name], p.RetBound, facts.bound[d.Name])
	kc, kok := facts.callbacks[d.Name]
	if kok {
		for i := range 5 {
			if a, _ := kernelArg(k.fields["arg"+strconv.Itoa(i+1)+"_type"]); a.Base() == helpers.ArgPtrToFunc {
				kc.Arg = i
			}
		}
		if p.Callback != nil {
			kc.Regs[1].BTF, kc.Regs[2].BTF = p.Callback.Regs[1].BTF, p.Callback.Regs[2].BTF // not parsed
		}
	}
	switch {
	case p.Callback == nil || !kok:
		check("callback", p.Callback == nil && !kok, p.Callback != nil, kok)
	default:
		check("callback", *p.Callback == kc, *p.Callback, kc)
	}
	if p.Ret.Base() == helpers.RetPtrToMem || p.RetBound == helpers.RetErrnoOrSize {
		// The size argument of the result: the ARG_CONST_ALLOC_SIZE_OR_ZERO
		// (check_helper_call's meta->mem_size) or the ARG_CONST_SIZE*
		// argument (msize_max_value).
		want := -1
		for i := range 5 {
			a, _ := kernelArg(k.fields["arg"+strconv.Itoa(i+1)+"_type"])
			if b := a.Base(); b == helpers.ArgConstAllocSizeOrZero || (p.RetBound == helpers.RetErrnoOrSize && (b == helpers.ArgConstSize || b == helpers.ArgConstSizeOrZero)) {
				want = i
			}
		}
		check("ret_size_arg", p.RetSizeArg == want, p.RetSizeArg, want)
	}
	return diffs, fields
}

// TestProtosMatchLinux compares the prototype of every helper waggle
// implements (the generic ones and every program type's) and of every
// other helper target linux offers (the prototypes waggle has without an
// implementation) with Linux 6.12's
// bpf_func_proto and what its verifier knows of the helper besides: gpl_only,
// the return type, each argument's type with its modifiers and fixed size,
// the structs of its BTF-typed arguments and result (arg*_btf_id,
// ret_btf_id), whether it changes packet data, acquires a reference or has a bounded
// result, and its callback's signature. Where the kernel has several
// prototypes for one helper (one per program type family: bpf_skb_load_bytes
// and its XDP and flow dissector variants), the helper is compared with
// each of those the get_func_proto functions return for its id or whose
// .func is bpf_<name>, and the closest one counts.
func TestProtosMatchLinux(t *testing.T) {
	src := kernelSource(t)
	protos := parseProtos(src)
	cases := parseCases(src, protos)
	facts := parseFacts(t, src)
	if len(protos) < 250 || len(facts.pktData) < 20 || len(facts.callbacks) < 5 {
		t.Fatalf("parsed %d prototypes, %d packet-changing helpers, %d callback setters: the parser no longer fits the source", len(protos), len(facts.pktData), len(facts.callbacks))
	}
	byFunc := map[string][]string{}
	for _, p := range protos {
		byFunc[p.fields["func"]] = append(byFunc[p.fields["func"]], p.name)
	}

	fns := parseFuncProtos(src)

	type key struct {
		id    int32
		proto string // the kernel's variant
		def   string // waggle's definition
	}
	compared := map[key]bool{}
	seen := map[string]bool{}
	ids := map[int32]bool{}
	reported := map[string]bool{}
	var nfields, ndiffs int
	var report []string
	union := map[string]bool{}
	for _, ak := range allowedKinds {
		kind, err := progtype.LookupAttach(ak.typ, ak.attach)
		if err != nil {
			t.Fatal(err)
		}
		fn, ok := kindFuncProto[ak.typ]
		if !ok {
			t.Fatalf("%v: no get_func_proto function named", ak.typ)
		}
		var defs helpers.Defs
		for _, d := range helpers.Generic() {
			if kind.Allowed(d.ID) {
				defs = append(defs, d)
			}
		}
		defs = append(defs, kind.Helpers()...)
		// Target linux adds the prototypes of the helpers waggle does not
		// implement.
		linux, err := kind.TargetHelpers(progtype.TargetLinux, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range slices.Sorted(maps.Keys(linux)) {
			if _, ok := defs.ByID(id); !ok {
				defs = append(defs, helpers.Def{ID: id, Name: helpers.Name(id), Proto: linux[id]})
			}
		}
		if len(linux) != len(kind.AllowedHelpers()) {
			t.Errorf("%v: target linux has %d prototypes, Allowed %d helpers", kind, len(linux), len(kind.AllowedHelpers()))
		}
		for _, d := range defs {
			ids[d.ID] = true
			cands := resolveProto(fns, protos, fn, d.Name, 0)
			if len(cands) == 0 {
				union[d.Name] = true
				// Reached some other way (a helper the switch tests with
				// if): every prototype of the helper.
				cands = append(append([]string{}, cases[d.Name]...), byFunc["bpf_"+d.Name]...)
			}
			sort.Strings(cands)
			cands = dedupe(cands)
			if len(cands) == 0 {
				t.Errorf("%s: no prototype in the kernel's source", d.Name)
				continue
			}
			var best []string
			var bestName string
			bestFields := -1
			for _, c := range cands {
				diffs, n := compareProto(t, d, protos[c], facts)
				if bestFields < 0 || len(diffs) < len(best) {
					best, bestName, bestFields = diffs, c, n
				}
			}
			k := key{d.ID, bestName, fmt.Sprintf("%p%+v", d.Func, d.Proto)}
			if compared[k] {
				continue
			}
			compared[k] = true
			nfields += bestFields
			t.Logf("%v: %s (%d): %s of %v", kind, d.Name, d.ID, bestName, cands)
			for _, diff := range best {
				k := d.Name + ": " + diff[:strings.Index(diff, ":")]
				seen[k] = true
				if _, ok := protoDiffs[k]; ok {
					continue
				}
				r := fmt.Sprintf("%s (%s): %s", d.Name, bestName, diff)
				t.Logf("%v: %s", kind, r)
				if !reported[r] {
					reported[r] = true
					ndiffs++
					report = append(report, r)
				}
			}
		}
	}
	sort.Strings(report)
	for _, r := range report {
		t.Error(r)
	}
	for k, why := range protoDiffs {
		if !seen[k] {
			t.Errorf("%s no longer differs from the kernel (listed because %s): remove it from protoDiffs", k, why)
		}
	}
	t.Logf("compared with every prototype of the helper, not resolved through get_func_proto: %v", slices.Sorted(maps.Keys(union)))
	t.Logf("compared %d (helper, kernel prototype) pairs of %d helper ids, %d fields; %d differences listed, %d unexplained", len(compared), len(ids), nfields, len(protoDiffs), ndiffs)
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestCallbacksHaveFuncArg checks that every callback signature names an
// ARG_PTR_TO_FUNC argument of its helper's prototype.
func TestCallbacksHaveFuncArg(t *testing.T) {
	seen := map[int32]bool{}
	for _, ak := range allowedKinds {
		kind, err := progtype.LookupAttach(ak.typ, ak.attach)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append(kind.Helpers(), helpers.Generic()...) {
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			c, ok := helpers.CallbackOf(d.ID)
			if ok != (d.Proto.Callback != nil) {
				t.Errorf("%s: CallbackOf %v, Proto.Callback %v", d.Name, ok, d.Proto.Callback)
				continue
			}
			if !ok {
				continue
			}
			if c != *d.Proto.Callback {
				t.Errorf("%s: CallbackOf %+v, Proto.Callback %+v", d.Name, c, *d.Proto.Callback)
			}
			if c.Arg >= len(d.Proto.Args) || d.Proto.Args[c.Arg] != helpers.ArgPtrToFunc {
				t.Errorf("%s: callback argument %d is not ARG_PTR_TO_FUNC in %v", d.Name, c.Arg, d.Proto.Args)
			}
		}
	}
}

// TestTargetLinux_source checks targetPairs against Linux 6.12's
// get_func_proto functions: a pair target linux offers resolves to a
// prototype through the type's function and those it falls back to, one
// it does not offer does not; a helper it offers only privileged is left
// by the type's own switch to the capability-gated part of
// bpf_base_func_proto or to bpf_sk_base_func_proto. Pairs whose answer
// depends on the attach type are left to TestTargetHelpers.
func TestTargetLinux_source(t *testing.T) {
	src := kernelSource(t)
	protos := parseProtos(src)
	fns := parseFuncProtos(src)
	base := fns["bpf_base_func_proto"]
	capBPF := strings.Index(base, "CAP_BPF")
	if capBPF < 0 || fns["bpf_sk_base_func_proto"] == "" {
		t.Fatal("the kernel's source has no capability check in bpf_base_func_proto, or no bpf_sk_base_func_proto: the parser no longer fits")
	}
	checked := 0
	for _, tc := range targetPairs {
		if tc.attach != progtype.AttachNone {
			continue
		}
		fn := kindFuncProto[tc.typ]
		got := len(resolveProto(fns, protos, fn, tc.helper, 0)) > 0
		if got != tc.linux {
			t.Errorf("%v, bpf_%s: Linux 6.12's %s offers it: %v; targetPairs says %v", tc.typ, tc.helper, fn, got, tc.linux)
		}
		if tc.linux && !tc.unpriv {
			_, own := caseGroups(fns[fn])[tc.helper]
			at := strings.Index(base, "case BPF_FUNC_"+tc.helper+":")
			_, sk := caseGroups(fns["bpf_sk_base_func_proto"])[tc.helper]
			if own || !(at > capBPF || sk) {
				t.Errorf("%v, bpf_%s: offered unprivileged in Linux 6.12 (in %s's own switch: %v; in bpf_base_func_proto at %d, its CAP_BPF check at %d; in bpf_sk_base_func_proto: %v)", tc.typ, tc.helper, fn, own, at, capBPF, sk)
			}
		}
		checked++
	}
	t.Logf("%d (program type, helper) pairs checked against Linux 6.12", checked)
}
