// SPDX-License-Identifier: GPL-2.0
//
// hook is a program for a user-defined hook point: a Go program declares
// the context (a struct request) and runs the program on each request it
// handles. It denies requests for /admin and counts them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct request {
	__u32 pid;
	__u8 method[8];
	__u64 path;     /* the path's bytes: path to path_end */
	__u64 path_end;
	__s32 verdict;  /* written by the program */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} denied SEC(".maps");

SEC("waggle/http_request")
int deny_admin(struct request *req)
{
	const char *p = (const char *)(long)req->path;
	const char *end = (const char *)(long)req->path_end;
	__u32 zero = 0;
	__u64 *n;

	if (p + 6 > end)
		return 0;
	if (p[0] != '/' || p[1] != 'a' || p[2] != 'd' || p[3] != 'm' || p[4] != 'i' || p[5] != 'n')
		return 0;
	req->verdict = -1;
	n = bpf_map_lookup_elem(&denied, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

char _license[] SEC("license") = "GPL";
