//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// core reads fields of the kernel's task_struct through CO-RE relocations:
// the offsets below are the compiler's guess (0 and 4), which the loader
// rewrites to the running kernel's from its BTF. The program stores the
// offsets it was given, so a test can compare them with the kernel's.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} offsets SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int core_offsets(void *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 pid_off = bpf_core_field_offset(struct task_struct, pid);
	__u64 tgid_off = bpf_core_field_offset(struct task_struct, tgid);
	bpf_map_update_elem(&offsets, &k0, &pid_off, BPF_ANY);
	bpf_map_update_elem(&offsets, &k1, &tgid_off, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int core_read(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int pid = BPF_CORE_READ(t, pid);
	return pid > 0;
}

char _license[] SEC("license") = "GPL";
