// SPDX-License-Identifier: GPL-2.0
//
// pointers prints pointers with bpf_snprintf: the kernel hashes %p and
// %pK (kptr_restrict 0) and prints %px raw. waggle must print the same
// shapes and never a raw address of its process.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct out {
	char text[256];
	long len;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct out);
} out SEC(".maps");

SEC("xdp")
int pointers(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct out *o = bpf_map_lookup_elem(&out, &zero);
	__u64 args[12];

	if (!o)
		return XDP_ABORTED;
	args[0] = (__u64)o;
	args[1] = 0;
	args[2] = (__u64)o;
	args[3] = 42;
	args[4] = (__u64)o;
	args[5] = (__u64)o;
	args[6] = (__u64)-2; /* an error pointer, -ENOENT */
	args[7] = (__u64)o;
	o->len = bpf_snprintf(o->text, sizeof(o->text),
			      "%p|%p|%pK|%p|[%24p]|[%-20p]|%p|%px.", args, 8 * 8);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
