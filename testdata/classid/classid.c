// SPDX-License-Identifier: GPL-2.0
//
// classid reads the net_cls classid of the current task and of the
// packet's socket, and the route realm of the packet, from a tc program,
// and the task's classid from a raw tracepoint; the answers go to results.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

static void put(__u32 k, __u64 v)
{
	bpf_map_update_elem(&results, &k, &v, BPF_ANY);
}

SEC("tc")
int tc_classid(struct __sk_buff *skb)
{
	put(0, bpf_get_cgroup_classid(skb));
	put(1, bpf_skb_cgroup_classid(skb));
	put(2, bpf_get_route_realm(skb));
	return TC_ACT_OK;
}

SEC("raw_tp/sys_enter")
int task_classid(void *ctx)
{
	/* The base set's bpf_get_cgroup_classid takes no packet. */
	__u64 (*classid)(void) = (void *)BPF_FUNC_get_cgroup_classid;

	put(3, classid());
	return 0;
}

char _license[] SEC("license") = "GPL";
