// SPDX-License-Identifier: GPL-2.0
//
// tracing calls the task and memory helpers of tracing programs from a raw
// tracepoint, which BPF_PROG_TEST_RUN can run: the test compares what they
// return in waggle (given the task and memory the test describes) and in
// Linux (the calling thread).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct result {
	__u64 pid_tgid;
	__u64 uid_gid;
	char comm[16];
	__s64 comm_ret;
	__u64 cpu;
	char buf[16];
	__s64 read_ret;
	char str[16];
	__s64 str_ret;
	__s64 bad_ret;
	char bad[8];
	__s64 printk_ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct result);
} results SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int task(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct result *r = bpf_map_lookup_elem(&results, &zero);
	const char *user = (const char *)ctx->args[0];

	if (!r)
		return 1;
	r->pid_tgid = bpf_get_current_pid_tgid();
	r->uid_gid = bpf_get_current_uid_gid();
	r->comm_ret = bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->cpu = bpf_get_smp_processor_id();
	r->read_ret = bpf_probe_read_user(r->buf, sizeof(r->buf), user);
	r->str_ret = bpf_probe_read_user_str(r->str, sizeof(r->str), user + 4);
	r->bad_ret = bpf_probe_read_user(r->bad, sizeof(r->bad), (void *)16); /* unmapped */
	r->printk_ret = bpf_trace_printk("cpu %d\n", 8, r->cpu);
	return 0;
}

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

SEC("xdp")
int perf_out(struct xdp_md *ctx)
{
	__u64 sample[2] = {0x1122334455667788ULL, ctx->data_end - ctx->data};

	if (bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, sample, sizeof(sample)))
		return XDP_DROP;
	/* The same with the first 14 bytes of the packet appended. */
	if (bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU | (14ULL << 32), sample, sizeof(sample)))
		return XDP_DROP;
	return XDP_PASS;
}
