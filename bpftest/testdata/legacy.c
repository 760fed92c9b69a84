// SPDX-License-Identifier: GPL-2.0
//
// legacy.c: the conventions of Cilium's unit tests before 1.19, which
// bpftest runs for the tests of past releases: statuses numbered 0 (error)
// to 3 (skip), a prog array declared the iproute2 way (struct bpf_elf_map
// in a "maps" section, with an id) holding the programs of "ID/KEY"
// sections, and configuration read as the address of a variable in
// .rodata.config, which the loader inlines (Object.InlineGlobalData).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "../../examples/unittest/unittest.h"

/* Cilium's statuses until 1.18. */
#undef TEST_ERROR
#undef TEST_PASS
#undef TEST_FAIL
#undef TEST_SKIP
#define TEST_ERROR 0
#define TEST_PASS 1
#define TEST_FAIL 2
#define TEST_SKIP 3

char LICENSE[] SEC("license") = "GPL";

/* iproute2's map definition (include/bpf_elf.h). */
struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

struct bpf_elf_map SEC("maps") calls = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = 4,
	.size_value = 4,
	.max_elem = 4,
	.id = 2,
};

/* Slot 1 of the map with id 2: reached by a_tail's setup. */
SEC("2/1")
int tail_mark(struct __sk_buff *skb)
{
	skb->cb[0] = 42;
	return TC_ACT_OK;
}

/* Slot 3: nothing tail-calls it, so it is left out. */
SEC("2/3")
int tail_unreachable(struct __sk_buff *skb)
{
	return *(__u8 *)(long)(skb->data + 100);
}

/* Configuration as Cilium 1.15 to 1.17 read it (CONFIG() of
 * lib/static_data.h): one lddw of the variable's address, which only means
 * its value once the loader has inlined it. */
static const volatile __u32 __config_answer SEC(".rodata.config") = 1234;
#define CONFIG_ANSWER() ({                                                   \
	__u64 out;                                                           \
	asm volatile("%[out] = __config_answer ll" : [out] "=r"(out));       \
	(__u32)out;                                                          \
})

/* A 64-byte packet: the check gets it with the verdict in front, which a
 * wire length of the whole buffer would not let through. */
SEC("tc/test/a_tail/pktgen")
int a_tail_pktgen(struct __sk_buff *skb)
{
	return bpf_skb_change_tail(skb, 64, 0) ? TEST_ERROR : 0;
}

SEC("tc/test/a_tail/setup")
int a_tail_setup(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, 1);
	return TC_ACT_SHOT;
}

SEC("tc/test/a_tail/check")
int a_tail_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 verdict;

	UT_INIT();
	if (data + 4 > end)
		return TEST_ERROR;
	verdict = *(__u32 *)data;
	UT_BEGIN("tail");
	UT_ASSERT(verdict == TC_ACT_OK, "setup returned %d: the tail call did not run", verdict);
	UT_ASSERT(skb->cb[0] == 42, "cb[0] is %d", skb->cb[0]);
	UT_END();
	return UT_DONE();
}

SEC("tc/test/b_config/check")
int b_config_check(struct __sk_buff *skb)
{
	__u32 v = CONFIG_ANSWER();

	UT_INIT();
	UT_BEGIN("inlined");
	UT_ASSERT(v == 1234, "config is %u, want 1234", v);
	UT_END();
	return UT_DONE();
}

SEC("tc/test/c_fail/check")
int c_fail_check(struct __sk_buff *skb)
{
	UT_INIT();
	UT_BEGIN("fails");
	UT_ASSERT(skb->cb[1] == 1, "cb[1] is %d", skb->cb[1]);
	UT_END();
	return UT_DONE();
}

SEC("tc/test/d_skip/check")
int d_skip_check(struct __sk_buff *skb)
{
	return TEST_SKIP;
}

SEC("tc/test/e_bad_status/check")
int e_bad_status_check(struct __sk_buff *skb)
{
	return 101; /* a pass since 1.19, nothing before */
}
