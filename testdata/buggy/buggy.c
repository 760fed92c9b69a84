// SPDX-License-Identifier: GPL-2.0
//
// buggy dereferences a map lookup without checking it for NULL, which the
// kernel's verifier refuses ("R0 invalid mem access 'map_value_or_null'").
// Until waggle's verifier lands, the checked interpreter catches the fault
// at run time, and the error names the source line.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int buggy(struct xdp_md *ctx)
{
	__u32 key = 7;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	*v += 1; /* the bug */
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
