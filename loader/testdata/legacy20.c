//go:build ignore

// The oldest legacy form: the five-field, 20-byte struct bpf_map_def, in a
// tracepoint program, as in early samples/bpf.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") calls = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") pids = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1024,
};

SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&calls, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bpf_map_update_elem(&pids, &pid, &k, BPF_ANY);
	return 0;
}

char _license[] SEC("license") = "GPL";
