// SPDX-License-Identifier: GPL-2.0
//
// kprobe, fentry and lsm hold one program for a hook this kernel may lack
// each: the tests check the error that names the missing probe, or that
// the program attaches where the kernel has the hook.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_sys_openat2")
int kprobe_openat(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
