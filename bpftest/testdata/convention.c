// SPDX-License-Identifier: GPL-2.0
//
// convention.c: tests of the test runner itself. Each test checks one rule
// of how Cilium's harness runs tests (order, shared maps, the packet and
// context carried between stages, the setup's verdict in front of the
// packet, cleared results), or reports one kind of outcome (failures with
// logs, skips, errors, a status out of range). bpftest's own tests expect
// exactly these outcomes, in user space and in the kernel.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "../../examples/unittest/unittest.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

// Slot 1: reached by g_ctx's setup.
__attribute__((btf_decl_tag("tail:jumps/1")))
SEC("tc/tail")
int tail_set_cb(struct __sk_buff *skb)
{
	skb->cb[0] = skb->mark + 1;
	return TC_ACT_OK;
}

// Slot 3: no program tail-calls slot 3, so the loader leaves it out; the
// kernel's verifier would refuse it (it reads past the packet unchecked).
__attribute__((btf_decl_tag("tail:jumps/3")))
SEC("tc/tail")
int tail_unreachable(struct __sk_buff *skb)
{
	return *(__u8 *)(long)(skb->data + 100);
}

static __always_inline __u64 *state_value(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&state, &key);
}

// a_state_write and b_state_read: tests run in name order in one
// collection, so b sees what a stored.
SEC("tc/test/a_state_write/check")
int a_state_write_check(struct __sk_buff *skb)
{
	__u64 *v = state_value();

	UT_INIT();
	if (!v)
		return TEST_ERROR;
	*v = 0x5eed;
	return UT_DONE();
}

SEC("tc/test/b_state_read/check")
int b_state_read_check(struct __sk_buff *skb)
{
	__u64 *v = state_value();

	UT_INIT();
	if (!v)
		return TEST_ERROR;
	UT_ASSERT(*v == 0x5eed, "state is %llx, want 5eed", *v);
	return UT_DONE();
}

// c_records: cases that pass and fail, with messages of several kinds.
SEC("tc/test/c_records/check")
int c_records_check(struct __sk_buff *skb)
{
	UT_INIT();
	UT_LOG("suite message %u", 7);
	UT_BEGIN("passes");
	UT_END();
	UT_BEGIN("fails");
	UT_ASSERT(0, "negative %d", -5);
	UT_ASSERT(0, "wide %llx", 0x123456789abcULL);
	UT_END();
	return UT_DONE();
}

// d_skip: a check that skips, saying why.
SEC("tc/test/d_skip/check")
int d_skip_check(struct __sk_buff *skb)
{
	UT_INIT();
	UT_LOG("feature %d is off", 3);
	return TEST_SKIP;
}

// e_no_setup: without a setup, check gets pktgen's packet as it is.
SEC("xdp/test/e_no_setup/pktgen")
int e_no_setup_pktgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 60 > data_end)
		return TEST_ERROR;
	*(__u8 *)data = 0xe0;
	// shrink the buffer to 60 bytes
	if (bpf_xdp_adjust_tail(ctx, 60 - (int)(data_end - data)))
		return TEST_ERROR;
	return 0;
}

SEC("xdp/test/e_no_setup/check")
int e_no_setup_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	UT_INIT();
	UT_ASSERT(data + 60 == data_end, "packet of %d bytes, want 60", ctx->data_end - ctx->data);
	if (data + 1 > data_end)
		return TEST_FAIL;
	UT_ASSERT(*(__u8 *)data == 0xe0, "first byte %x, want e0", *(__u8 *)data);
	return UT_DONE();
}

// f_verdict: check gets setup's return value in front of the packet.
SEC("xdp/test/f_verdict/pktgen")
int f_verdict_pktgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 1 > data_end)
		return TEST_ERROR;
	*(__u8 *)data = 0xf0;
	// shrink the buffer to 20 bytes: with the verdict in front, a packet
	// of 3,520 bytes would not fit in one XDP buffer
	if (bpf_xdp_adjust_tail(ctx, 20 - (int)(data_end - data)))
		return TEST_ERROR;
	return 0;
}

SEC("xdp/test/f_verdict/setup")
int f_verdict_setup(struct xdp_md *ctx)
{
	return 0x12345678;
}

SEC("xdp/test/f_verdict/check")
int f_verdict_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	UT_INIT();
	if (data + 5 > data_end)
		return TEST_FAIL;
	UT_ASSERT(*(__u32 *)data == 0x12345678, "verdict %x, want 12345678", *(__u32 *)data);
	UT_ASSERT(*(__u8 *)(data + 4) == 0xf0, "packet byte %x, want f0", *(__u8 *)(data + 4));
	UT_ASSERT(data + 24 == data_end, "packet of %d bytes, want 24", ctx->data_end - ctx->data);
	return UT_DONE();
}

// g_ctx: the __sk_buff is carried from stage to stage, and setup reaches
// the tail call its decl tag placed.
SEC("tc/test/g_ctx/pktgen")
int g_ctx_pktgen(struct __sk_buff *skb)
{
	skb->mark = 0x42;
	// Shrink the packet, as tests do: the context keeps wire_len 3,520
	// (the first packet's length), and both the kernel and waggle refuse
	// a packet longer than wire_len, such as 3,520 bytes with the verdict
	// in front.
	return bpf_skb_change_tail(skb, 64, 0) ? TEST_ERROR : 0;
}

SEC("tc/test/g_ctx/setup")
int g_ctx_setup(struct __sk_buff *skb)
{
	if (skb->mark != 0x42)
		return TEST_FAIL;
	bpf_tail_call(skb, &jumps, 1);
	return TEST_ERROR;
}

SEC("tc/test/g_ctx/check")
int g_ctx_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	UT_INIT();
	if (data + 4 > data_end)
		return TEST_FAIL;
	UT_ASSERT(*(__u32 *)data == TC_ACT_OK, "verdict %d, want TC_ACT_OK", *(__u32 *)data);
	UT_ASSERT(skb->mark == 0x42, "mark %x, want 42", skb->mark);
	UT_ASSERT(skb->cb[0] == 0x43, "cb[0] %x, want 43", skb->cb[0]);
	return UT_DONE();
}

// h_bad_status: a check must return 100-103.
SEC("tc/test/h_bad_status/check")
int h_bad_status_check(struct __sk_buff *skb)
{
	return 7;
}

// i_error: a check reports a framework error.
SEC("tc/test/i_error/check")
int i_error_check(struct __sk_buff *skb)
{
	return TEST_ERROR;
}

// j_cleared: the results of earlier tests are cleared before each test.
SEC("tc/test/j_cleared/check")
int j_cleared_check(struct __sk_buff *skb)
{
	__u8 first;

	UT_INIT();
	first = ut_buf[0];
	UT_ASSERT(first == 0, "result buffer starts with %x, want 0", first);
	return UT_DONE();
}
