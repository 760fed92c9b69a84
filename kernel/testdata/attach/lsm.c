// SPDX-License-Identifier: GPL-2.0
//
// See kprobe.c.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("lsm/file_open")
int lsm_file_open(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
