// SPDX-License-Identifier: Apache-2.0
//
// types declares maps whose keys and values cover what bpftool's
// btf_dumper formats: integers of every size and sign, characters and
// strings, bools, enums (with a negative enumerator), pointers, arrays,
// nested and anonymous structs and unions, bitfields, 128-bit integers,
// per-CPU values and global data sections. mapjson's tests format them
// and compare with bpftool's output for the same bytes in the kernel.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 1, GREEN = 2, BLUE = -3 };

struct point {
	__s16 x;
	__s16 y;
};

struct key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct value {
	__u64 counter;
	char name[12];
	enum color color;
	_Bool ok;
	__u8 pad1[3];
	__s8 s8;
	__s16 s16;
	__s32 s32;
	__s64 s64;
	unsigned int low : 3, mid : 5, high : 24;
	union {
		__u32 word;
		__u8 bytes[4];
	};
	struct {
		__u16 a;
		__u16 b;
	};
	struct point pts[2];
	__u8 mac[6];
	char tag;
	unsigned char raw[3];
	void *ptr;
	unsigned __int128 wide;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct key);
	__type(value, struct value);
} things SEC(".maps");

struct counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct counts);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, enum color);
	__type(value, __u32);
} colors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8);
	__type(key, struct key);
	__type(value, __s64);
} prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, char[8]);
} names SEC(".maps");

__u64 hits = 7;
char greeting[8] = "hello";
const volatile struct point origin = { .x = -1, .y = 2 };
__u32 zeroed;

SEC("xdp")
int touch(struct xdp_md *ctx)
{
	struct key key = { .prefixlen = 32 };
	enum color color = RED;
	__u32 k = 0;
	struct value *v = bpf_map_lookup_elem(&things, &key);
	struct counts *c = bpf_map_lookup_elem(&percpu, &k);
	__u32 *n = bpf_map_lookup_elem(&colors, &color);
	__s64 *p = bpf_map_lookup_elem(&prefixes, &key);
	char *s = bpf_map_lookup_elem(&names, &k);

	hits += origin.x + zeroed + greeting[0];
	return (v != 0) + (c != 0) + (n != 0) + (p != 0) + (s != 0) + XDP_PASS;
}

char _license[] SEC("license") = "GPL";
