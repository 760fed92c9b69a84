// SPDX-License-Identifier: GPL-2.0
//
// foreach walks hash maps with bpf_for_each_map_elem while the callback
// changes them, for TestForEachMapElem_kernel: the order of the walk (the
// maps have BPF_F_ZERO_SEED, so waggle and Linux hash alike), what it
// visits after the callback deletes, updates and adds elements, and what
// the helper returns must be Linux's.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

#define HASH(name, maptype)                                  \
	struct {                                             \
		__uint(type, maptype);                       \
		__uint(max_entries, 64);                     \
		__uint(map_flags, BPF_F_ZERO_SEED);          \
		__type(key, __u32);                          \
		__type(value, __u64);                        \
	} name SEC(".maps")

HASH(hash, BPF_MAP_TYPE_HASH);
HASH(lru, BPF_MAP_TYPE_LRU_HASH);
HASH(pcpu, BPF_MAP_TYPE_PERCPU_HASH);

struct walk {
	__u64 mode;
	__u64 n;
	__u64 sum;
	__u64 keys; /* a digest of the keys in the order visited */
};

static void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&out, &slot, &v, BPF_ANY);
}

static long visit(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->n++;
	w->sum += *val;
	w->keys = w->keys * 31 + *key;
	switch (w->mode) {
	case 1: /* delete the odd keys as they are visited */
		if (*key & 1)
			bpf_map_delete_elem(map, key);
		break;
	case 2: /* stop at key 9: what comes before it is the walk's order */
		if (*key == 9)
			return 1;
		break;
	case 3: /* write each value, add a key for each even one */
		*val += 1000;
		if (!(*key & 1) && *key < 100) {
			__u32 k = *key + 101;
			__u64 v = k;
			bpf_map_update_elem(map, &k, &v, BPF_NOEXIST);
		}
		break;
	}
	return 0;
}

static __always_inline void fill(void *map)
{
	for (__u32 k = 1; k <= 16; k++) {
		__u64 v = k * 10;
		bpf_map_update_elem(map, &k, &v, BPF_ANY);
	}
}

static __always_inline void walk(void *map, __u64 mode)
{
	struct walk w = { .mode = mode };
	long r = bpf_for_each_map_elem(map, visit, &w, 0);

	put(mode * 4 + 0, r);
	put(mode * 4 + 1, w.n);
	put(mode * 4 + 2, w.sum);
	put(mode * 4 + 3, w.keys);
}

/* One program per map: fill it, then walk it in each mode in turn. */
#define PROG(name, map)             \
	SEC("xdp")                  \
	int name(struct xdp_md *ctx) \
	{                           \
		fill(&map);         \
		walk(&map, 0);      \
		walk(&map, 1);      \
		walk(&map, 2);      \
		walk(&map, 3);      \
		return XDP_PASS;    \
	}

PROG(foreach_hash, hash)
PROG(foreach_lru, lru)
PROG(foreach_pcpu, pcpu)

char LICENSE[] SEC("license") = "GPL";
