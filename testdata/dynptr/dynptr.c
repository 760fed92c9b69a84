// dynptr holds good and bad uses of dynptrs (struct bpf_dynptr): local
// ones over map values, ring buffer ones, and the const dynptr
// bpf_user_ringbuf_drain gives its callback. TestVerify_kernel compares
// waggle's verdict on each program with the kernel's; TestDynptr_kernel
// runs the good ones on both.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u8[64]);
} vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} urb SEC(".maps");

static void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&out, &slot, &v, BPF_ANY);
}

static __u8 *value(__u32 k)
{
	return bpf_map_lookup_elem(&vals, &k);
}

/* Good: a local dynptr over a map value, written, read back, sliced. */
SEC("socket")
int good_local(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {};
	__u8 *v = value(0), *p;
	long r1, r2, r3, r4;

	if (!v)
		return 0;
	r1 = bpf_dynptr_from_mem(v, 64, 0, &d);
	r2 = bpf_dynptr_write(&d, 4, buf, sizeof(buf), 0);
	r3 = bpf_dynptr_read(back, sizeof(back), &d, 6, 0);
	r4 = bpf_dynptr_write(&d, 60, buf, sizeof(buf), 0); /* past the end: -E2BIG */
	put(0, r1);
	put(1, r2);
	put(2, r3);
	put(3, r4);
	put(4, *(__u64 *)back);
	p = bpf_dynptr_data(&d, 8, 4);
	if (p) {
		p[0] = 0x42;
		put(5, p[1]);
	}
	put(6, bpf_dynptr_data(&d, 62, 4) == 0);
	r1 = bpf_dynptr_from_mem(v, 64, 1, &d); /* flags must be 0 */
	put(7, r1);
	put(8, bpf_dynptr_read(back, 1, &d, 0, 0)); /* an invalid dynptr: -EINVAL */
	return 0;
}

/* Good: a ring buffer dynptr submitted, another discarded, a third
 * (too large) still discarded although its reservation failed. */
SEC("socket")
int good_ringbuf(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u64 x = 0x1122334455667788;
	__u64 *p;
	long r;

	r = bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	put(0, r);
	put(1, bpf_dynptr_write(&d, 0, &x, sizeof(x), 0));
	p = bpf_dynptr_data(&d, 8, 8);
	if (p)
		*p = 7;
	bpf_ringbuf_submit_dynptr(&d, 0);

	r = bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	put(2, r);
	bpf_ringbuf_discard_dynptr(&d, 0);

	r = bpf_ringbuf_reserve_dynptr(&rb, 1 << 20, 0, &d);
	put(3, r);
	put(4, bpf_dynptr_write(&d, 0, &x, sizeof(x), 0));
	bpf_ringbuf_discard_dynptr(&d, 0);
	r = bpf_ringbuf_reserve_dynptr(&rb, 8, 1, &d); /* flags must be 0 */
	put(5, r);
	bpf_ringbuf_discard_dynptr(&d, 0);
	put(6, bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA));
	return 0;
}

/* Good: a local dynptr overwritten by a store is just gone. */
SEC("socket")
int good_overwrite_local(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(1);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	*(volatile __u64 *)&d = 0;
	return 0;
}

/* Good: reinitialising a local dynptr. */
SEC("socket")
int good_reinit_local(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(1), x = 0;

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_dynptr_from_mem(v, 32, 0, &d);
	return bpf_dynptr_read(&x, 1, &d, 31, 0);
}

/* Bad: the ring buffer dynptr is never released. */
SEC("socket")
int bad_leak(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	return 0;
}

/* Bad: released only when the reservation worked. */
SEC("socket")
int bad_leak_on_failure(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	if (bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d))
		return 0;
	bpf_ringbuf_submit_dynptr(&d, 0);
	return 0;
}

/* Bad: released twice. */
SEC("socket")
int bad_double_release(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Bad: a store over a referenced dynptr. */
SEC("socket")
int bad_overwrite_ringbuf(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	*((volatile __u32 *)&d + 1) = 0;
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Bad: reading a dynptr's bytes. */
SEC("socket")
int bad_read_bytes(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	return *(volatile __u64 *)&d;
}

/* Bad: a dynptr's bytes given to a helper as memory. */
SEC("socket")
int bad_bytes_as_mem(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);
	__u32 k = 0;

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_map_update_elem(&out, &k, &d, BPF_ANY);
	return 0;
}

/* Bad: a helper filling memory over a dynptr. */
SEC("socket")
int bad_fill_over(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_dynptr_read(&d, 8, &d, 0, 0);
	return 0;
}

/* Bad: an uninitialised dynptr read. */
SEC("socket")
int bad_uninit(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 x;

	return bpf_dynptr_read(&x, 1, &d, 0, 0);
}

/* Bad: a local dynptr submitted to the ring buffer. */
SEC("socket")
int bad_wrong_type(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	return 0;
}

/* Bad: dynptr_from_mem over the stack. */
SEC("socket")
int bad_from_stack(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 buf[16] = {};

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	return 0;
}

/* Bad: a dynptr at an offset not a multiple of 8. */
SEC("socket")
int bad_misaligned(struct __sk_buff *ctx)
{
	__u64 buf[3] = {};
	__u8 *v = value(0);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, (struct bpf_dynptr *)((char *)buf + 4));
	return 0;
}

/* Bad: the ring buffer slice used after the dynptr was submitted. */
SEC("socket")
int bad_slice_after_release(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u64 *p;

	bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	p = bpf_dynptr_data(&d, 0, 8);
	bpf_ringbuf_submit_dynptr(&d, 0);
	if (p)
		*p = 1;
	return 0;
}

/* Bad: the slice used past its size. */
SEC("socket")
int bad_slice_oob(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0), *p;

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	if (p)
		return p[4];
	return 0;
}

/* Bad: the slice used without a NULL check. */
SEC("socket")
int bad_slice_null(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0), *p;

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	return p[0];
}

/* Bad: a local dynptr's slice used after the dynptr was overwritten. */
SEC("socket")
int bad_slice_after_overwrite(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0), *p;

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	*(volatile __u64 *)&d = 0;
	if (p)
		return p[0];
	return 0;
}

/* Bad: the ring buffer dynptr overwritten by a new one. */
SEC("socket")
int bad_reinit_ringbuf(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	bpf_dynptr_from_mem(v, 64, 0, &d);
	return 0;
}

/* bpf_user_ringbuf_drain's callbacks. */

static long sum_cb(const struct bpf_dynptr *d, void *ctx)
{
	__u64 *sum = ctx, x = 0;

	if (bpf_dynptr_read(&x, sizeof(x), (struct bpf_dynptr *)d, 0, 0))
		return 1;
	*sum += x;
	return 0;
}

/* Good: sums the first 8 bytes of each sample. */
SEC("xdp")
int good_drain(struct xdp_md *ctx)
{
	__u64 sum = 0;
	long n;

	n = bpf_user_ringbuf_drain(&urb, sum_cb, &sum, 0);
	put(0, n);
	put(1, sum);
	return XDP_PASS;
}

static long slice_cb(const struct bpf_dynptr *d, void *ctx)
{
	__u32 *p = bpf_dynptr_data(d, 0, 4);

	if (!p)
		return 0;
	*(__u64 *)ctx += *p;
	return 0;
}

/* Good: the callback slices its sample. */
SEC("tc")
int good_drain_slice(struct __sk_buff *skb)
{
	__u64 sum = 0;

	bpf_user_ringbuf_drain(&urb, slice_cb, &sum, 0);
	put(2, sum);
	return 0;
}

static long release_cb(const struct bpf_dynptr *d, void *ctx)
{
	bpf_ringbuf_discard_dynptr((struct bpf_dynptr *)d, 0);
	return 0;
}

/* Bad: the callback releases the const dynptr. */
SEC("xdp")
int bad_drain_release(struct xdp_md *ctx)
{
	bpf_user_ringbuf_drain(&urb, release_cb, 0, 0);
	return XDP_PASS;
}

static long ret_cb(const struct bpf_dynptr *d, void *ctx)
{
	return 2;
}

/* Bad: the callback returns 2, outside [0, 1]. */
SEC("xdp")
int bad_drain_ret(struct xdp_md *ctx)
{
	bpf_user_ringbuf_drain(&urb, ret_cb, 0, 0);
	return XDP_PASS;
}

/* Bad: drain from a BPF ring buffer. */
SEC("xdp")
int bad_drain_map(struct xdp_md *ctx)
{
	bpf_user_ringbuf_drain(&rb, sum_cb, 0, 0);
	return XDP_PASS;
}

static long deref_cb(const struct bpf_dynptr *d, void *ctx)
{
	return *(__u64 *)d;
}

/* Bad: the callback reads the dynptr's bytes. */
SEC("xdp")
int bad_drain_deref(struct xdp_md *ctx)
{
	bpf_user_ringbuf_drain(&urb, deref_cb, 0, 0);
	return XDP_PASS;
}

/* Forged dynptrs, for unverified runs (TestDynptr_forged): the verifier
 * refuses them all. */

struct fake {
	__u64 data;
	__u32 size;
	__u32 off;
};

/* Bad: a local dynptr made up over memory past a map value. */
SEC("socket")
int bad_forge_read(struct __sk_buff *ctx)
{
	struct fake f = {};
	__u8 *v = value(0);
	__u64 x = 0;

	if (!v)
		return 0;
	f.data = (__u64)v + 4096;
	f.size = 64 | 1 << 28;
	bpf_dynptr_read(&x, sizeof(x), (struct bpf_dynptr *)&f, 0, 0);
	return x;
}

/* Bad: a ring buffer dynptr made up over a map value, submitted. */
SEC("socket")
int bad_forge_submit(struct __sk_buff *ctx)
{
	struct fake f = {};
	__u8 *v = value(0);

	if (!v)
		return 0;
	f.data = (__u64)v;
	f.size = 8 | 2 << 28;
	bpf_ringbuf_submit_dynptr((struct bpf_dynptr *)&f, 0);
	return 0;
}

/* Bad: a dynptr of an unknown type. */
SEC("socket")
int bad_forge_type(struct __sk_buff *ctx)
{
	struct fake f = {};
	__u8 *v = value(0);
	__u64 x = 0;

	if (!v)
		return 0;
	f.data = (__u64)v;
	f.size = 8 | 5 << 28;
	return bpf_dynptr_read(&x, sizeof(x), (struct bpf_dynptr *)&f, 0, 0);
}

/* Bad: bpf_dynptr_data of a made-up dynptr, then a write through it. */
SEC("socket")
int bad_forge_data(struct __sk_buff *ctx)
{
	struct fake f = {};
	__u8 *v = value(0), *p;

	if (!v)
		return 0;
	f.data = (__u64)v + 8192;
	f.size = 64 | 1 << 28;
	p = bpf_dynptr_data((struct bpf_dynptr *)&f, 0, 8);
	if (p)
		*p = 1;
	return 0;
}

static long scribble_cb(const struct bpf_dynptr *d, void *ctx)
{
	*(volatile __u64 *)d = 0;
	return 0;
}

/* Bad: the drain callback writes its dynptr. */
SEC("xdp")
int bad_forge_scribble(struct xdp_md *ctx)
{
	bpf_user_ringbuf_drain(&urb, scribble_cb, 0, 0);
	return XDP_PASS;
}

/* Global functions taking a dynptr. */

__noinline int global_read(const struct bpf_dynptr *d)
{
	__u8 x = 0;

	if (!d)
		return 0;
	bpf_dynptr_read(&x, 1, (struct bpf_dynptr *)d, 1, 0);
	return x;
}

__noinline int global_deref(const struct bpf_dynptr *d)
{
	if (!d)
		return 0;
	return *(volatile __u8 *)d;
}

__noinline int global_release(struct bpf_dynptr *d)
{
	if (d)
		bpf_ringbuf_discard_dynptr(d, 0);
	return 0;
}

/* Good: a global function reads a local and a ring buffer dynptr. */
SEC("socket")
int good_global(struct __sk_buff *ctx)
{
	struct bpf_dynptr d, r;
	__u8 *v = value(2);

	if (!v)
		return 0;
	v[1] = 33;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	put(0, global_read(&d));
	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &r);
	put(1, global_read(&r));
	bpf_ringbuf_discard_dynptr(&r, 0);
	return 0;
}

/* Bad: an uninitialised dynptr given to a global function. */
SEC("socket")
int bad_global_uninit(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	return global_read(&d);
}

/* Bad: a global function reads its dynptr's bytes. */
SEC("socket")
int bad_global_deref(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(2);

	if (!v)
		return 0;
	bpf_dynptr_from_mem(v, 64, 0, &d);
	return global_deref(&d);
}

/* Bad: a global function releases its dynptr. */
SEC("socket")
int bad_global_release(struct __sk_buff *ctx)
{
	struct bpf_dynptr r;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &r);
	global_release(&r);
	bpf_ringbuf_discard_dynptr(&r, 0);
	return 0;
}

/* Paths that meet with different dynptrs: state pruning must tell them
 * apart. */

/* Bad: a ring buffer dynptr on one path, a local one on the other, both
 * discarded. */
SEC("socket")
int bad_join_types(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	if (bpf_get_prandom_u32() & 1)
		bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	else
		bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Bad: initialised on one path only. */
SEC("socket")
int bad_join_init(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0), x = 0;

	if (!v)
		return 0;
	if (bpf_get_prandom_u32() & 1)
		bpf_dynptr_from_mem(v, 64, 0, &d);
	bpf_dynptr_read(&x, 1, &d, 0, 0);
	return x;
}

/* Good: local dynptrs over different values on the two paths. */
SEC("socket")
int good_join_local(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0), *w = value(1), x = 0;

	if (!v || !w)
		return 0;
	if (bpf_get_prandom_u32() & 1)
		bpf_dynptr_from_mem(v, 64, 0, &d);
	else
		bpf_dynptr_from_mem(w, 32, 0, &d);
	bpf_dynptr_read(&x, 1, &d, 0, 0);
	return 0;
}

/* Good: a ring buffer dynptr on each path, released after they meet. */
SEC("socket")
int good_join_ringbuf(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;

	if (bpf_get_prandom_u32() & 1)
		bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	else
		bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Bad: a ring buffer dynptr on one path, a slot of it overwritten after
 * the paths meet. */
SEC("socket")
int bad_join_overwrite(struct __sk_buff *ctx)
{
	struct bpf_dynptr d;
	__u8 *v = value(0);

	if (!v)
		return 0;
	if (bpf_get_prandom_u32() & 1)
		bpf_dynptr_from_mem(v, 64, 0, &d);
	else
		bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	*(volatile __u64 *)&d = 0;
	return 0;
}
