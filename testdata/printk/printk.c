// SPDX-License-Identifier: GPL-2.0
//
// printk calls bpf_trace_vprintk, the helper libbpf's bpf_printk uses for
// more than three arguments, with good and bad argument arrays, and reads
// CLOCK_TAI; the results go to a map for the test to compare.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

static void put(__u32 k, __s64 v)
{
	bpf_map_update_elem(&results, &k, &v, BPF_ANY);
}

SEC("xdp")
int vprintk(struct xdp_md *ctx)
{
	static const char many[] = "%d %d %d %d %d %d %d %d %d %d %d %d %d";
	static const char mixed[] = "%s|%5u|%-4x|%llx|%c|%pI4";
	static const char plain[] = "no arguments";
	static const char ip[4] = {192, 168, 0, 1};
	__u64 args[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};

	/* bpf_printk with four arguments: libbpf calls bpf_trace_vprintk. */
	put(0, bpf_printk("%d %d %d %d", 1, -2, 3, 4));
	args[0] = (__u64)(long)"waggle";
	args[1] = 42;
	args[2] = 255;
	args[3] = 1ULL << 40;
	args[4] = 'z';
	args[5] = (__u64)(long)ip;
	put(1, bpf_trace_vprintk(mixed, sizeof(mixed), args, 6 * 8));
	/* Twelve is the most; thirteen is EINVAL. */
	put(2, bpf_trace_vprintk(many, sizeof(many), args, 13 * 8));
	/* A length that is not a multiple of eight is EINVAL. */
	put(3, bpf_trace_vprintk(mixed, sizeof(mixed), args, 12));
	/* More conversions than arguments is EINVAL. */
	put(4, bpf_trace_vprintk(mixed, sizeof(mixed), args, 2 * 8));
	/* No arguments at all. */
	put(5, bpf_trace_vprintk(plain, sizeof(plain), 0, 0));
	put(6, bpf_ktime_get_tai_ns());
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
