// SPDX-License-Identifier: GPL-2.0
//
// hooks has one small program per hook kernel.Attach knows that this
// kernel can run; each counts its runs in its slot of counts. The
// tracing programs count only the process whose tgid is config[0].
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum {
	SLOT_TCX_INGRESS,
	SLOT_TCX_EGRESS,
	SLOT_TRACEPOINT,
	SLOT_RAW_TP,
	SLOT_UPROBE,
	SLOT_URETPROBE,
	SLOT_PERF_EVENT,
	SLOT_CGROUP_SKB,
	SLOT_CGROUP_SOCK,
	SLOTS = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline int ours(void)
{
	__u32 zero = 0, *pid = bpf_map_lookup_elem(&config, &zero);

	return pid && *pid == bpf_get_current_pid_tgid() >> 32;
}

SEC("tcx/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
	count(SLOT_TCX_INGRESS);
	return 0; /* TC_ACT_OK */
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
	count(SLOT_TCX_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(void *ctx)
{
	if (ours())
		count(SLOT_TRACEPOINT);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_sys_enter(void *ctx)
{
	if (ours())
		count(SLOT_RAW_TP);
	return 0;
}

SEC("uprobe")
int uprobe_hit(void *ctx)
{
	count(SLOT_UPROBE);
	return 0;
}

SEC("uretprobe")
int uretprobe_hit(void *ctx)
{
	count(SLOT_URETPROBE);
	return 0;
}

SEC("perf_event")
int perf_sample(void *ctx)
{
	count(SLOT_PERF_EVENT);
	return 0;
}

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb)
{
	count(SLOT_CGROUP_SKB);
	return 1; /* let it through */
}

SEC("cgroup/sock_create")
int cgroup_sock(struct bpf_sock *sk)
{
	count(SLOT_CGROUP_SOCK);
	return 1;
}

char _license[] SEC("license") = "GPL";
