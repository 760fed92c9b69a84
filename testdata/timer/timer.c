// SPDX-License-Identifier: GPL-2.0
//
// timer arms bpf_timer callbacks, rightly and wrongly, for the verifier:
// TestVerify_kernel compares waggle's verdict on every program with the
// running kernel's, and TestVerifyTimer_messages (timer_linux_test.go)
// checks waggle's messages are Linux's. A timer callback is an async
// callback: it runs later, on its own stack, with (map, key, value) of
// the timer's map, and must return 0.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CLOCK_MONOTONIC 1

struct elem {
	__u64 counter;
	struct bpf_timer t; /* at offset 8 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct elem);
} tarr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct elem);
} tarr2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct elem);
} thash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct elem);
} tlru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} plain SEC(".maps");

struct locked {
	__u64 counter;
	struct bpf_spin_lock l;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked);
} lockmap SEC(".maps");

/* A global function may not be a callback. It comes first in .text: the
 * relocation of a reference to a global function resolves to the start
 * of .text in cilium/ebpf 0.22 (a reference to a later one loads the
 * first function instead). */

__attribute__((noinline)) int global_cb(void *map, __u32 *key, struct elem *val)
{
	if (!val)
		return 0;
	val->counter++;
	return 0;
}

/* The callbacks: static functions, their address taken (BPF_PSEUDO_FUNC). */

static int cb_count(void *map, __u32 *key, struct elem *val)
{
	val->counter += *key + 1;
	return 0;
}

static int cb_ret1(void *map, __u32 *key, struct elem *val)
{
	val->counter++;
	return 1;
}

static int cb_rearm(void *map, __u32 *key, struct elem *val)
{
	/* A callback may start its own timer again. */
	bpf_timer_start(&val->t, 1000000, 0);
	return 0;
}

static int cb_store_timer(void *map, __u32 *key, struct elem *val)
{
	/* The callback may not write its timer's bytes either. */
	*(volatile __u64 *)&val->t = 0;
	return 0;
}

static int cb_lookup(void *map, __u32 *key, struct elem *val)
{
	/* The map pointer is the timer's map: it may look up in it. */
	__u32 k = 1;
	struct elem *e = bpf_map_lookup_elem(map, &k);

	if (e)
		e->counter = val->counter;
	return 0;
}

/* Correct uses. */

SEC("xdp")
int timer_array_ok(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	v->counter++;
	bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_count);
	bpf_timer_start(&v->t, 1000, 0);
	return XDP_PASS;
}

SEC("tc")
int timer_hash_ok(struct __sk_buff *skb)
{
	__u32 k = skb->len & 3;
	struct elem init = {}, *v;

	bpf_map_update_elem(&thash, &k, &init, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&thash, &k);
	if (!v)
		return 0;
	if (bpf_timer_init(&v->t, &thash, CLOCK_MONOTONIC) && v->counter > 10) {
		bpf_timer_cancel(&v->t);
		return 0;
	}
	bpf_timer_set_callback(&v->t, cb_rearm);
	bpf_timer_start(&v->t, 5000, 0);
	return 0;
}

SEC("socket")
int timer_socket_ok(struct __sk_buff *skb)
{
	__u32 k = 2;
	struct elem *v = bpf_map_lookup_elem(&tlru, &k);

	if (!v)
		return 0;
	bpf_timer_init(&v->t, &tlru, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_lookup);
	return bpf_timer_start(&v->t, 0, 0) ? 0 : skb->len;
}

SEC("xdp")
int timer_two_callbacks(struct xdp_md *ctx)
{
	__u32 k = 1;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);
	long r;

	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	if (ctx->data_end - ctx->data > 64)
		r = bpf_timer_set_callback(&v->t, cb_count);
	else
		r = bpf_timer_set_callback(&v->t, cb_lookup);
	/* bpf_timer_set_callback returns a number the caller may test. */
	if (r)
		return XDP_DROP;
	return XDP_PASS;
}

/* Incorrect uses. */

SEC("tracepoint/syscalls/sys_enter_nanosleep")
int timer_tracing(void *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (v)
		bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_nanosleep")
int lock_tracing(void *ctx)
{
	__u32 k = 0;
	struct locked *v = bpf_map_lookup_elem(&lockmap, &k);

	if (v)
		v->counter++;
	return 0;
}

SEC("socket")
int lock_socket(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct locked *v = bpf_map_lookup_elem(&lockmap, &k);

	if (v)
		v->counter++;
	return 0;
}

SEC("xdp")
int timer_var_off(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);
	__u32 i = bpf_get_prandom_u32() & 8;

	if (!v)
		return XDP_PASS;
	bpf_timer_init((struct bpf_timer *)((char *)v + i), &tarr, CLOCK_MONOTONIC);
	return XDP_PASS;
}

SEC("xdp")
int timer_wrong_off(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	bpf_timer_init((struct bpf_timer *)&v->counter, &tarr, CLOCK_MONOTONIC);
	return XDP_PASS;
}

SEC("xdp")
int timer_no_timer(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&plain, &k);

	if (!v)
		return XDP_PASS;
	bpf_timer_init((struct bpf_timer *)v, &plain, CLOCK_MONOTONIC);
	return XDP_PASS;
}

SEC("xdp")
int timer_other_map(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, &tarr2, CLOCK_MONOTONIC);
	return XDP_PASS;
}

SEC("xdp")
int timer_cb_ret1(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_ret1);
	return XDP_PASS;
}

SEC("xdp")
int timer_store(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	*(volatile __u64 *)((char *)&v->t + 8) = 1;
	return XDP_PASS;
}

SEC("xdp")
int timer_load(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	return *(volatile __u32 *)((char *)&v->t + 4) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int timer_cb_store(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_store_timer);
	return XDP_PASS;
}

SEC("tc")
int timer_helper_value(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct elem *v = bpf_map_lookup_elem(&tarr, &k);

	if (!v)
		return 0;
	/* A helper reading the whole value reads the timer's bytes. */
	bpf_map_update_elem(&tarr2, &k, v, BPF_ANY);
	return 0;
}

SEC("xdp")
int timer_on_stack(struct xdp_md *ctx)
{
	struct bpf_timer t = {};

	bpf_timer_init(&t, &tarr, CLOCK_MONOTONIC);
	return XDP_PASS;
}

/* Callbacks calling on: themselves, functions, bpf_loop. */

static int cb_self(void *map, __u32 *key, struct elem *val)
{
	/* Arms itself again: a new entry into the callback, no loop. */
	bpf_timer_set_callback(&val->t, cb_self);
	bpf_timer_start(&val->t, 1000, 0);
	return 0;
}

static __attribute__((noinline)) int bump(struct elem *val, __u32 by)
{
	val->counter += by;
	return val->counter > 100;
}

static int cb_calls(void *map, __u32 *key, struct elem *val)
{
	if (bump(val, *key))
		val->counter = 0;
	return 0;
}

static long step(__u64 i, __u64 *sum)
{
	*sum += i;
	return 0;
}

static int cb_loop(void *map, __u32 *key, struct elem *val)
{
	/* A callback called now, on the timer callback's own stack. */
	__u64 sum = 0;

	bpf_loop(8, step, &sum, 0);
	val->counter = sum;
	return 0;
}

static int cb_loop_value(void *map, __u32 *key, struct elem *val)
{
	/* bpf_loop's context must be on the stack. */
	bpf_loop(8, step, val, 0);
	return 0;
}

static int cb_ret_key(void *map, __u32 *key, struct elem *val)
{
	return *key;
}

static int cb_ret_ptr(void *map, __u32 *key, struct elem *val)
{
	return (long)val;
}

#define ARM(name, cb)                                                \
	SEC("xdp")                                                   \
	int name(struct xdp_md *ctx)                                 \
	{                                                            \
		__u32 k = 3;                                         \
		struct elem *v = bpf_map_lookup_elem(&tarr, &k);     \
                                                                     \
		if (!v)                                              \
			return XDP_PASS;                             \
		bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);       \
		bpf_timer_set_callback(&v->t, cb);                   \
		bpf_timer_start(&v->t, 1000, 0);                     \
		return XDP_PASS;                                     \
	}

static int cb_write_key(void *map, __u32 *key, struct elem *val)
{
	/* The key is read-only. */
	*(volatile __u32 *)key = 1;
	return 0;
}

ARM(timer_self_rearm, cb_self)
ARM(timer_cb_write_key, cb_write_key)
ARM(timer_cb_calls, cb_calls)
ARM(timer_cb_loop, cb_loop)
ARM(timer_cb_loop_value, cb_loop_value)
ARM(timer_cb_ret_key, cb_ret_key)
ARM(timer_cb_ret_ptr, cb_ret_ptr)

/* A value with both a lock and a timer. */

struct both {
	struct bpf_spin_lock l; /* at 0 */
	__u32 pad;
	struct bpf_timer t; /* at 8 */
	__u64 n;            /* at 24 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct both);
} bothmap SEC(".maps");

static int cb_both(void *map, __u32 *key, struct both *val)
{
	bpf_spin_lock(&val->l);
	val->n++;
	bpf_spin_unlock(&val->l);
	return 0;
}

SEC("tc")
int timer_lock_ok(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct both *v = bpf_map_lookup_elem(&bothmap, &k);

	if (!v)
		return 0;
	bpf_timer_init(&v->t, &bothmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_both);
	bpf_spin_lock(&v->l);
	v->n = 0;
	bpf_spin_unlock(&v->l);
	return 0;
}

SEC("tc")
int timer_lock_store(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct both *v = bpf_map_lookup_elem(&bothmap, &k);

	if (!v)
		return 0;
	/* Bytes 0-15 hold the lock and half the timer: the lock, at the
	 * lower offset, is named. */
	bpf_skb_load_bytes(skb, 0, v, 16);
	return 0;
}

SEC("tc")
int timer_locked_call(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct both *v = bpf_map_lookup_elem(&bothmap, &k);

	if (!v)
		return 0;
	bpf_spin_lock(&v->l);
	bpf_timer_start(&v->t, 10, 0);
	bpf_spin_unlock(&v->l);
	return 0;
}

/* Inner maps holding timers: each lookup of the outer map is its own. */

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct elem);
};

struct inner inner0 SEC(".maps"), inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { &inner0, &inner1 },
};

SEC("xdp")
int timer_inner_ok(struct xdp_md *ctx)
{
	__u32 k = 0;
	void *in = bpf_map_lookup_elem(&outer, &k);
	struct elem *v;

	if (!in)
		return XDP_PASS;
	v = bpf_map_lookup_elem(in, &k);
	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, in, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_lookup);
	return XDP_PASS;
}

SEC("xdp")
int timer_inner_mismatch(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1;
	void *in0 = bpf_map_lookup_elem(&outer, &k0);
	void *in1 = bpf_map_lookup_elem(&outer, &k1);
	struct elem *v;

	if (!in0 || !in1)
		return XDP_PASS;
	v = bpf_map_lookup_elem(in0, &k0);
	if (!v)
		return XDP_PASS;
	bpf_timer_init(&v->t, in1, CLOCK_MONOTONIC);
	return XDP_PASS;
}

/* A callback must be static (global_cb, first in .text). */

ARM(timer_global_cb, global_cb)

/* An async callback runs on a stack of its own: 400 bytes here and 400
 * in the program that arms it fit. */

static int cb_big_stack(void *map, __u32 *key, struct elem *val)
{
	volatile char buf[400];

	buf[0] = 1;
	buf[399] = (char)val->counter;
	val->counter = buf[0] + buf[399];
	return 0;
}

SEC("xdp")
int timer_big_stacks(struct xdp_md *ctx)
{
	volatile char buf[400];
	__u32 k = 0;
	struct elem *v;

	buf[0] = 1;
	buf[399] = 2;
	v = bpf_map_lookup_elem(&tarr, &k);
	if (!v)
		return buf[0] + buf[399];
	bpf_timer_init(&v->t, &tarr, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, cb_big_stack);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
