// SPDX-License-Identifier: GPL-2.0
//
// progtypes exercises the cgroup, cgroup storage, perf counter and
// user-memory helpers against the kernel's: each program writes what the
// helpers return into the results array, and the test compares it, and the
// memory the programs wrote, after running each program in waggle and in
// Linux.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SLOTS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} cgroups SEC(".maps");

struct counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, struct counts);
} storage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, __u64);
} pstorage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} counters SEC(".maps");

static __always_inline void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&results, &slot, &v, BPF_ANY);
}

SEC("tc")
int skb_cgroup(struct __sk_buff *skb)
{
	for (__u32 i = 0; i < 5; i++)
		put(i, bpf_skb_under_cgroup(skb, &cgroups, i));
	put(5, bpf_skb_cgroup_id(skb));
	return 0;
}

SEC("raw_tp")
int task_cgroup(void *ctx)
{
	for (__u32 i = 0; i < 5; i++)
		put(i, bpf_current_task_under_cgroup(&cgroups, i));
	put(5, bpf_get_current_cgroup_id());
	return 0;
}

SEC("cgroup_skb/egress")
int count(struct __sk_buff *skb)
{
	struct counts *c = bpf_get_local_storage(&storage, 0);
	__u64 *p = bpf_get_local_storage(&pstorage, 0);

	c->packets++;
	c->bytes += skb->len;
	*p += 2;
	put(0, c->packets);
	put(1, c->bytes);
	put(2, *p);
	return 1;
}

SEC("raw_tp")
int perf_read(void *ctx)
{
	struct bpf_perf_event_value v = {};
	__u64 flags[] = {BPF_F_CURRENT_CPU, 0, 1, 2, 4, 1ULL << 33};

	for (__u32 i = 0; i < 6; i++)
		put(i, bpf_perf_event_read(&counters, flags[i]));
	put(6, bpf_perf_event_read_value(&counters, BPF_F_CURRENT_CPU, &v, sizeof(v)));
	put(7, v.counter);
	put(8, bpf_perf_event_read_value(&counters, 3, &v, sizeof(v)));
	put(9, bpf_perf_event_read_value(&counters, BPF_F_CURRENT_CPU, &v, 16));
	return 0;
}

const char msg[16] = "written by bpf!";

SEC("raw_tp")
int write_user(__u64 *args)
{
	put(0, bpf_probe_write_user((void *)args[0], msg, 8));
	put(1, bpf_probe_write_user((void *)(args[0] + 8), msg + 8, 8));
	put(2, bpf_probe_write_user((void *)args[1], msg, 4));
	return 0;
}

char _license[] SEC("license") = "GPL";
