// SPDX-License-Identifier: GPL-2.0
//
// See kprobe.c.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("fentry/do_sys_openat2")
int fentry_openat(void *ctx)
{
	return 0;
}

SEC("fexit/do_sys_openat2")
int fexit_openat(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
