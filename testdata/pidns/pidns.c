// SPDX-License-Identifier: GPL-2.0
//
// pidns asks bpf_get_ns_current_pid_tgid for the current task's pid and
// tgid in the pid namespace the test names (dev and ino, from stat of
// /proc/self/ns/pid), in another one, with a device wider than 32 bits and
// with a buffer of the wrong size; each answer and buffer goes to results.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct ns {
	__u64 dev, ino;
};

struct answer {
	__s64 ret;
	struct bpf_pidns_info info;
	__u32 wide[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct answer);
} results SEC(".maps");

static void ask(__u32 k, __u64 dev, __u64 ino, int wide)
{
	struct answer a;

	__builtin_memset(&a, 0xaa, sizeof(a));
	if (wide)
		a.ret = bpf_get_ns_current_pid_tgid(dev, ino, (void *)a.wide, sizeof(a.wide));
	else
		a.ret = bpf_get_ns_current_pid_tgid(dev, ino, &a.info, sizeof(a.info));
	bpf_map_update_elem(&results, &k, &a, BPF_ANY);
}

SEC("raw_tp/sys_enter")
int pidns(void *ctx)
{
	__u32 zero = 0;
	struct ns *ns = bpf_map_lookup_elem(&config, &zero);

	if (!ns)
		return 1;
	ask(0, ns->dev, ns->ino, 0);
	ask(1, ns->dev, ns->ino + 1, 0);
	ask(2, ns->dev | (1ULL << 32), ns->ino, 0);
	ask(3, ns->dev, ns->ino, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
