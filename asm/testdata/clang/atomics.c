// Atomic operations on a map value and on global variables, 32 and 64 bits.
// Before v3 only the non-fetching add exists.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

__u32 counter32;
__u64 counter64;

SEC("xdp")
int atomics(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&values, &k);
	if (!v)
		return 0;

	__sync_fetch_and_add(v, 1);
	__sync_fetch_and_add(&counter32, 2);
	__sync_fetch_and_add(&counter64, ctx->rx_queue_index);
#if __BPF_CPU_VERSION__ >= 3
	__u64 old = __sync_fetch_and_add(v, 3);
	__u32 o32 = __sync_fetch_and_add(&counter32, 3);
	o32 += __sync_fetch_and_or(&counter32, 4);
	__sync_fetch_and_or(&counter64, 0x10);
	__sync_fetch_and_and(&counter32, ~1u);
	o32 ^= __sync_fetch_and_and(&counter32, 0xff);
	__sync_fetch_and_xor(v, 5);
	o32 += __sync_fetch_and_xor(&counter32, 6);
	old += __sync_fetch_and_xor(&counter64, 6);
	__u32 prev = __sync_val_compare_and_swap(&counter32, o32, 7);
	__u64 prev64 = __sync_val_compare_and_swap(v, old, 8);
	__u32 x32 = __sync_lock_test_and_set(&counter32, 9);
	__u64 x64 = __sync_lock_test_and_set(&counter64, prev64);
	return prev + x32 + (x64 >> 32) + (prev64 & 1);
#else
	return 1;
#endif
}

char _license[] SEC("license") = "GPL";
