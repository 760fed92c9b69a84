// SPDX-License-Identifier: GPL-2.0
//
// helpers exercises waggle's generic helpers against the kernel's: each
// program writes what the helpers return into the out array, and the test
// compares every map after running each program once in waggle and in
// Linux.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map;

#define OUT_SLOTS 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OUT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

struct text {
	char buf[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct text);
} texts SEC(".maps");

static __always_inline void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&out, &slot, &v, BPF_ANY);
}

/* strings */

const char num1[] = "  -1234abc";
const char num2[] = "0x7fffffffffffffff";
const char num3[] = "0777";
const char num4[] = "99999999999999999999";
const char word[] = "waggle";

SEC("xdp")
int strings(struct xdp_md *ctx)
{
	long l;
	unsigned long ul;
	char cmp[8] = "wagglf";
	struct text t = {};
	__u32 zero = 0;
	__u64 args[4];

	put(0, bpf_strtol(num1, sizeof(num1), 0, &l));
	put(1, l);
	put(2, bpf_strtol(num2, sizeof(num2), 0, &l));
	put(3, l);
	put(4, bpf_strtoul(num3, sizeof(num3), 0, &ul));
	put(5, ul);
	put(6, bpf_strtoul(num3, sizeof(num3), 10, &ul));
	put(7, ul);
	put(8, bpf_strtoul(num4, sizeof(num4), 10, &ul));
	put(9, bpf_strtol(num1, sizeof(num1), 7, &l));
	put(10, bpf_strtoul(num1, sizeof(num1), 0, &ul));
	put(11, bpf_strncmp(cmp, 6, word));
	put(12, bpf_strncmp(cmp, 5, word));
	cmp[5] = 'd';
	put(13, bpf_strncmp(cmp, 6, word));

	args[0] = -42;
	args[1] = 0xbeef;
	args[2] = (__u64)(long)word;
	args[3] = 'Z';
	put(14, bpf_snprintf(t.buf, sizeof(t.buf), "d=%d x=%x s=%s c=%c|", args, sizeof(args)));
	bpf_map_update_elem(&texts, &zero, &t, BPF_ANY);
	put(15, bpf_snprintf(t.buf, 8, "%05u", args, 8));
	zero = 1;
	bpf_map_update_elem(&texts, &zero, &t, BPF_ANY);
	return XDP_PASS;
}

/* queues, stacks, bloom filters */

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 3);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 3);
	__type(value, __u32);
} stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__uint(map_extra, 3);
	__type(value, __u32);
} bloom SEC(".maps");

SEC("xdp")
int values(struct xdp_md *ctx)
{
	__u32 v, i, slot = 0;

	for (i = 1; i <= 4; i++) {
		v = i * 10;
		put(slot++, bpf_map_push_elem(&queue, &v, 0));  /* the 4th: -E2BIG */
		put(slot++, bpf_map_push_elem(&stack, &v, 0));
	}
	v = 50;
	put(slot++, bpf_map_push_elem(&queue, &v, BPF_EXIST)); /* overwrites the oldest */
	for (i = 0; i < 4; i++) {
		v = 0;
		put(slot++, bpf_map_pop_elem(&queue, &v));
		put(slot++, v);
		v = 0;
		put(slot++, bpf_map_peek_elem(&stack, &v));
		put(slot++, v);
		put(slot++, bpf_map_pop_elem(&stack, &v));
	}
	for (i = 0; i < 8; i++) {
		v = i * 7;
		bpf_map_push_elem(&bloom, &v, 0);
	}
	v = 21;
	put(slot++, bpf_map_peek_elem(&bloom, &v));
	v = 22;
	put(slot++, bpf_map_peek_elem(&bloom, &v)); /* probably -ENOENT */
	return XDP_PASS;
}

/* hash update flags */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} small SEC(".maps");

SEC("xdp")
int flags(struct xdp_md *ctx)
{
	__u32 k = 1, slot = 0;
	__u64 v = 100, *p;

	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_EXIST));   /* -ENOENT */
	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_NOEXIST)); /* 0 */
	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_NOEXIST)); /* -EEXIST */
	v = 200;
	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_EXIST));   /* 0 */
	k = 2;
	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_ANY));
	k = 3;
	put(slot++, bpf_map_update_elem(&small, &k, &v, BPF_ANY));     /* -E2BIG */
	put(slot++, bpf_map_update_elem(&small, &k, &v, 7));           /* -EINVAL */
	put(slot++, bpf_map_delete_elem(&small, &k));                  /* -ENOENT */
	k = 1;
	p = bpf_map_lookup_elem(&small, &k);
	put(slot++, p ? *p : 0);
	put(slot++, bpf_map_delete_elem(&small, &k));
	put(slot++, bpf_map_lookup_elem(&small, &k) == 0);
	return XDP_PASS;
}

/* callbacks: bpf_loop and bpf_for_each_map_elem */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} numbers SEC(".maps");

struct acc {
	__u64 sum;
	__u64 keys;
	__u32 stop_at;
};

static long add_index(__u32 i, struct acc *a)
{
	a->sum += i * i;
	return i == a->stop_at;
}

static long add_elem(struct bpf_map *map, __u32 *key, __u64 *value, struct acc *a)
{
	a->sum += *value;
	a->keys += *key;
	*value += 1;
	return *key == a->stop_at;
}

SEC("xdp")
int callbacks(struct xdp_md *ctx)
{
	struct acc a = { .stop_at = 1000 };
	__u32 i;
	__u64 v;

	put(0, bpf_loop(10, add_index, &a, 0));
	put(1, a.sum);
	a.sum = 0;
	a.stop_at = 4;
	put(2, bpf_loop(10, add_index, &a, 0));
	put(3, a.sum);
	put(4, bpf_loop(10, add_index, &a, 1)); /* -EINVAL */
	for (i = 0; i < 8; i++) {
		__u32 k = i; /* i stays in a register, so the verifier bounds the loop */

		v = i * 100;
		bpf_map_update_elem(&numbers, &k, &v, BPF_ANY);
	}
	a.sum = 0;
	a.stop_at = 1000;
	put(5, bpf_for_each_map_elem(&numbers, add_elem, &a, 0));
	put(6, a.sum);
	put(7, a.keys);
	a.sum = a.keys = 0;
	a.stop_at = 2;
	put(8, bpf_for_each_map_elem(&numbers, add_elem, &a, 0));
	put(9, a.sum);
	return XDP_PASS;
}

/* LPM trie */

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16);
	__type(key, struct lpm_key);
	__type(value, __u64);
} lpm SEC(".maps");

SEC("xdp")
int prefixes(struct xdp_md *ctx)
{
	struct lpm_key k;
	__u64 v, *p;

	k = (struct lpm_key){8, {10, 0, 0, 0}};
	v = 8;
	bpf_map_update_elem(&lpm, &k, &v, BPF_ANY);
	k = (struct lpm_key){24, {10, 1, 2, 0}};
	v = 24;
	bpf_map_update_elem(&lpm, &k, &v, BPF_ANY);
	k = (struct lpm_key){32, {10, 1, 2, 3}};
	v = 32;
	bpf_map_update_elem(&lpm, &k, &v, BPF_ANY);

	k = (struct lpm_key){32, {10, 1, 2, 3}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(0, p ? *p : 0);
	k = (struct lpm_key){32, {10, 1, 2, 4}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(1, p ? *p : 0);
	k = (struct lpm_key){32, {10, 9, 9, 9}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(2, p ? *p : 0);
	k = (struct lpm_key){32, {11, 0, 0, 1}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(3, p ? *p : 0);
	k = (struct lpm_key){16, {10, 1, 2, 3}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(4, p ? *p : 0);
	k = (struct lpm_key){24, {10, 1, 2, 0}};
	put(5, bpf_map_delete_elem(&lpm, &k));
	k = (struct lpm_key){32, {10, 1, 2, 4}};
	p = bpf_map_lookup_elem(&lpm, &k);
	put(6, p ? *p : 0);
	return XDP_PASS;
}

/* spin locks */

struct locked {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked);
} locks SEC(".maps");

SEC("xdp")
int locking(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked *l = bpf_map_lookup_elem(&locks, &zero);

	if (!l)
		return XDP_ABORTED;
	bpf_spin_lock(&l->lock);
	l->count += 5;
	bpf_spin_unlock(&l->lock);
	put(0, l->count);
	return XDP_PASS;
}

/* ring buffer queries */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

SEC("xdp")
int ringq(struct xdp_md *ctx)
{
	__u64 data[2] = {1, 2};
	void *r;

	put(0, bpf_ringbuf_query(&ring, BPF_RB_RING_SIZE));
	put(1, bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA));
	put(2, bpf_ringbuf_output(&ring, data, sizeof(data), 0));
	put(3, bpf_ringbuf_output(&ring, data, sizeof(data), 0));
	put(4, bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA));
	put(5, bpf_ringbuf_query(&ring, BPF_RB_PROD_POS));
	r = bpf_ringbuf_reserve(&ring, 8, 0);
	put(6, r != 0);
	if (r)
		bpf_ringbuf_discard(r, 0);
	put(7, bpf_ringbuf_query(&ring, BPF_RB_PROD_POS));
	r = bpf_ringbuf_reserve(&ring, 8192, 0);
	put(8, r == 0);
	if (r)
		bpf_ringbuf_discard(r, 0);
	put(9, bpf_ringbuf_output(&ring, data, sizeof(data), 8)); /* -EINVAL */
	return XDP_PASS;
}

/* tail calls: at most 33 */

int tail(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int(struct xdp_md *));
} chain SEC(".maps") = {
	.values = { [0] = (void *)&tail },
};

SEC("xdp")
int tail(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&out, &zero);

	if (n)
		*n += 1;
	bpf_tail_call(ctx, &chain, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";

/* more map types: LRU, map-in-map, devmap redirects, perf events */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner0 SEC(".maps"), inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner0, [1] = &inner1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

SEC("xdp")
int moremaps(struct xdp_md *ctx)
{
	__u32 k, slot = 0;
	__u64 v, *p;
	void *m;

	for (__u32 i = 0; i < 8; i++) {
		__u32 key = i; /* i stays in a register, so the verifier bounds the loop */

		v = i * 3;
		put(i, bpf_map_update_elem(&lru, &key, &v, BPF_NOEXIST));
	}
	slot = 8;
	k = 5;
	p = bpf_map_lookup_elem(&lru, &k);
	put(slot++, p ? *p : 99);
	put(slot++, bpf_map_delete_elem(&lru, &k));

	k = 1;
	m = bpf_map_lookup_elem(&outer, &k);
	put(slot++, m != 0);
	if (m) {
		__u32 ik = 2;

		v = 77;
		put(slot++, bpf_map_update_elem(m, &ik, &v, BPF_ANY));
	}
	m = bpf_map_lookup_elem(&outer_hash, &k);
	put(slot++, m != 0);
	if (m) {
		__u32 ik = 2;

		p = bpf_map_lookup_elem(m, &ik);
		put(slot++, p ? *p : 99); /* 77: the same inner map */
	}
	k = 0;
	put(slot++, bpf_map_lookup_elem(&outer_hash, &k) != 0);

	put(slot++, bpf_redirect_map(&devs, 3, XDP_PASS)); /* empty slot: the fallback */
	put(slot++, bpf_redirect_map(&devs, 9, XDP_DROP)); /* past the end */
	v = 1;
	put(slot++, bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &v, sizeof(v))); /* no reader: -ENOENT */
	return XDP_PASS;
}

/* per-CPU lookups of another CPU's value (bpf_map_lookup_percpu_elem) */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_lru SEC(".maps");

/* sum_cpus adds key's value over the CPUs until a lookup fails, as
 * Cilium's assert_metrics_count does. */
static __always_inline __u64 sum_cpus(void *map, __u32 key)
{
	__u64 sum = 0, *p;

	for (__u32 cpu = 0; cpu < 128; cpu++) {
		p = bpf_map_lookup_percpu_elem(map, &key, cpu);
		if (!p)
			break;
		sum += *p;
	}
	return sum;
}

SEC("xdp")
int percpu(struct xdp_md *ctx)
{
	__u32 k = 1, me = bpf_get_smp_processor_id(), slot = 0;
	__u64 v, *p;

	v = 40;
	put(slot++, bpf_map_update_elem(&pcpu_array, &k, &v, BPF_ANY));
	v = 41;
	put(slot++, bpf_map_update_elem(&pcpu_hash, &k, &v, BPF_ANY));
	v = 42;
	put(slot++, bpf_map_update_elem(&pcpu_lru, &k, &v, BPF_ANY));

	p = bpf_map_lookup_percpu_elem(&pcpu_array, &k, me);
	put(slot++, p ? *p : 99);
	p = bpf_map_lookup_percpu_elem(&pcpu_hash, &k, me);
	put(slot++, p ? *p : 99);
	p = bpf_map_lookup_percpu_elem(&pcpu_lru, &k, me);
	put(slot++, p ? *p : 99);

	put(slot++, sum_cpus(&pcpu_array, 1));
	put(slot++, sum_cpus(&pcpu_hash, 1));
	put(slot++, sum_cpus(&pcpu_lru, 1));
	put(slot++, sum_cpus(&pcpu_array, 0)); /* present, zero everywhere */

	k = 2; /* past the array's end */
	put(slot++, bpf_map_lookup_percpu_elem(&pcpu_array, &k, me) != 0);
	k = 3; /* not in the hashes */
	put(slot++, bpf_map_lookup_percpu_elem(&pcpu_hash, &k, me) != 0);
	put(slot++, bpf_map_lookup_percpu_elem(&pcpu_lru, &k, me) != 0);
	k = 1; /* a CPU that does not exist */
	put(slot++, bpf_map_lookup_percpu_elem(&pcpu_array, &k, 1 << 20) != 0);
	put(slot++, bpf_map_lookup_percpu_elem(&pcpu_hash, &k, 0xffffffff) != 0);
	return XDP_PASS;
}
