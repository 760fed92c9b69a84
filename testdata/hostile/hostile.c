// SPDX-License-Identifier: GPL-2.0
//
// hostile holds programs Linux's verifier refuses, each doing one thing a
// hostile or buggy program does: loop forever, nest bpf_loops, write at
// any offset from a map value or ring buffer record (poke), misuse spin
// locks and ring buffer records. Until waggle's verifier lands they run
// unverified, and every one must end with an error naming the instruction,
// never a hang, a panic or a fault, and leave the maps usable.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct value {
	__u64 a, b;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct value);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct value);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct value);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct value);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct value);
} percpu_array SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, struct value);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

struct locked {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct locked);
} locks SEC(".maps");

const volatile __u64 limit = 42;    /* .rodata: read-only to programs */
__u64 counter;                      /* .bss */

/* A command in the packet, after 14 bytes of Ethernet header. */
struct cmd {
	__u8 map;    /* which memory (enum below) */
	__u8 write;  /* 1: store val at off; 0: load from off into out */
	__u16 key;
	__s32 off;   /* from the value, record or variable */
	__u64 val;
};

enum { M_HASH, M_LRU, M_PERCPU_HASH, M_ARRAY, M_PERCPU_ARRAY, M_LPM, M_RING, M_RODATA, M_BSS, M_LOCKS };

static void *value_of(struct cmd *c)
{
	__u32 key = c->key;
	struct lpm_key lk = {32, {10, 0, 0, (__u8)c->key}};
	struct value zero = {};
	void *m;

	switch (c->map) {
	case M_HASH:
		m = &hash;
		break;
	case M_LRU:
		m = &lru;
		break;
	case M_PERCPU_HASH:
		m = &percpu_hash;
		break;
	case M_ARRAY:
		return bpf_map_lookup_elem(&array, &key);
	case M_PERCPU_ARRAY:
		return bpf_map_lookup_elem(&percpu_array, &key);
	case M_LPM: {
		void *v = bpf_map_lookup_elem(&lpm, &lk);
		if (!v) {
			bpf_map_update_elem(&lpm, &lk, &zero, BPF_ANY);
			v = bpf_map_lookup_elem(&lpm, &lk);
		}
		return v;
	}
	case M_RODATA:
		return (void *)&limit;
	case M_BSS:
		return &counter;
	case M_LOCKS:
		return bpf_map_lookup_elem(&locks, &key);
	default:
		return 0;
	}
	void *v = bpf_map_lookup_elem(m, &key);
	if (!v) {
		bpf_map_update_elem(m, &key, &zero, BPF_ANY);
		v = bpf_map_lookup_elem(m, &key);
	}
	return v;
}

/* poke writes or reads 8 bytes at any offset from a value of any map, a
 * ring buffer record or a global variable: the offset comes from the
 * packet, so nothing but a run-time check stops it. */
SEC("xdp")
int poke(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cmd *c = data + 14;
	char *p;

	if ((void *)(c + 1) > data_end)
		return XDP_ABORTED;
	if (c->map == M_RING) {
		p = bpf_ringbuf_reserve(&ring, 16, 0);
		if (!p)
			return XDP_DROP;
		if (c->write)
			*(volatile __u64 *)(p + c->off) = c->val;
		else
			c->val = *(volatile __u64 *)(p + c->off);
		bpf_ringbuf_submit(p, 0);
		return XDP_PASS;
	}
	p = value_of(c);
	if (!p)
		return XDP_DROP;
	if (c->write)
		*(volatile __u64 *)(p + c->off) = c->val;
	else
		c->val = *(volatile __u64 *)(p + c->off);
	return XDP_PASS;
}

/* where stores the address poke would access at offset 0 into counter,
 * so the test knows which bytes around it are value bytes. */
SEC("xdp")
int where(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cmd *c = data + 14;
	char *p;

	if ((void *)(c + 1) > data_end)
		return XDP_ABORTED;
	if (c->map == M_RING) {
		p = bpf_ringbuf_reserve(&ring, 16, 0);
		if (!p)
			return XDP_DROP;
		counter = (__u64)p;
		bpf_ringbuf_discard(p, 0);
		return XDP_PASS;
	}
	p = value_of(c);
	if (!p)
		return XDP_DROP;
	counter = (__u64)p;
	return XDP_PASS;
}

SEC("xdp")
int forever(struct xdp_md *ctx)
{
	volatile __u32 n = 0;

	for (;;)
		n++;
	return XDP_PASS;
}

static long inner(__u32 i, void *ctx)
{
	return 0;
}

static long outer(__u32 i, void *ctx)
{
	bpf_loop(1 << 23, inner, ctx, 0);
	return 0;
}

SEC("xdp")
int nested_loops(struct xdp_md *ctx)
{
	bpf_loop(1 << 23, outer, 0, 0);
	return XDP_PASS;
}

static struct locked *lock0(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&locks, &zero);
}

SEC("xdp")
int lock_ok(struct xdp_md *ctx)
{
	struct locked *l = lock0();

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock(&l->lock);
	l->count++;
	bpf_spin_unlock(&l->lock);
	return XDP_PASS;
}

SEC("xdp")
int lock_at_exit(struct xdp_md *ctx)
{
	struct locked *l = lock0();

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock(&l->lock);
	l->count++;
	return XDP_PASS;
}

SEC("xdp")
int lock_twice(struct xdp_md *ctx)
{
	struct locked *l = lock0();

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock(&l->lock);
	bpf_spin_lock(&l->lock);
	bpf_spin_unlock(&l->lock);
	return XDP_PASS;
}

SEC("xdp")
int lock_helper(struct xdp_md *ctx)
{
	struct locked *l = lock0();

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock(&l->lock);
	l->count = bpf_ktime_get_ns();
	bpf_spin_unlock(&l->lock);
	return XDP_PASS;
}

SEC("xdp")
int lock_stack(struct xdp_md *ctx)
{
	struct bpf_spin_lock l = {};

	bpf_spin_lock(&l);
	bpf_spin_unlock(&l);
	return XDP_PASS;
}

SEC("xdp")
int lock_field(struct xdp_md *ctx)
{
	struct locked *l = lock0();

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock((struct bpf_spin_lock *)&l->count);
	bpf_spin_unlock((struct bpf_spin_lock *)&l->count);
	return XDP_PASS;
}

SEC("xdp")
int lock_packet(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 4 > data_end)
		return XDP_ABORTED;
	bpf_spin_lock(data);
	bpf_spin_unlock(data);
	return XDP_PASS;
}

/* A lock in global data, as Linux allows since 6.2; and one on a global
 * variable that is not a lock. */
struct bpf_spin_lock glock SEC(".data.locks");
__u64 gcount SEC(".data.locks");

SEC("xdp")
int lock_global(struct xdp_md *ctx)
{
	bpf_spin_lock(&glock);
	gcount++;
	bpf_spin_unlock(&glock);
	return XDP_PASS;
}

SEC("xdp")
int lock_bss(struct xdp_md *ctx)
{
	bpf_spin_lock((struct bpf_spin_lock *)&counter);
	bpf_spin_unlock((struct bpf_spin_lock *)&counter);
	return XDP_PASS;
}

SEC("xdp")
int ring_leak(struct xdp_md *ctx)
{
	__u64 *r = bpf_ringbuf_reserve(&ring, 8, 0);

	if (!r)
		return XDP_DROP;
	*r = 1;
	return XDP_PASS;
}

SEC("xdp")
int ring_twice(struct xdp_md *ctx)
{
	__u64 *r = bpf_ringbuf_reserve(&ring, 8, 0);

	if (!r)
		return XDP_DROP;
	*r = 2;
	bpf_ringbuf_submit(r, 0);
	bpf_ringbuf_submit(r, 0);
	return XDP_PASS;
}

SEC("xdp")
int ring_ok(struct xdp_md *ctx)
{
	__u64 *r = bpf_ringbuf_reserve(&ring, 8, 0);

	if (!r)
		return XDP_DROP;
	*r = 3;
	bpf_ringbuf_submit(r, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
