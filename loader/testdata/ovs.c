//go:build ignore

// The layout of Open vSwitch's eBPF datapath (bpf/ in its 2018-2019 eBPF
// branch), rebuilt small: every program a static function in its own
// section ("ingress", "egress", "tail-N"), a static helper in .text that two
// of them call, struct bpf_map_def of 28 bytes (with iproute2's id and
// pinning) in SEC("maps"), and one prog array that OVS's loader fills with
// the "tail-N" programs at slot N. Built as ovs_oldclang.o, without .type
// and .size, as the clang of the time emitted it: the static functions are
// then local STT_NOTYPE symbols, which cilium/ebpf takes for jump labels
// ("section ingress: missing symbols").
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define __section(NAME) __attribute__((section(NAME), used))
#define __stringify(X) #X
#define __section_tail(KEY) __section("tail-" __stringify(KEY))

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int id;
	unsigned int pinning;
};

struct bpf_map_def __section("maps") tailcalls = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 64,
};

struct bpf_map_def __section("maps") datapath_stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};

#define PARSER_CALL 32

static __attribute__((noinline)) void stats_account(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&datapath_stats, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

__section_tail(PARSER_CALL)
static int ovs_parser(struct __sk_buff *skb)
{
	stats_account(1);
	skb->cb[0] = skb->len;
	bpf_tail_call(skb, &tailcalls, 0);
	return TC_ACT_OK;
}

__section_tail(0)
static int tail_action_unspec(struct __sk_buff *skb)
{
	return skb->cb[0] > 100 ? TC_ACT_SHOT : TC_ACT_OK;
}

__section("ingress")
static int to_stack(struct __sk_buff *skb)
{
	stats_account(0);
	bpf_tail_call(skb, &tailcalls, PARSER_CALL);
	return TC_ACT_SHOT;
}

__section("egress")
static int from_stack(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &tailcalls, PARSER_CALL);
	return TC_ACT_SHOT;
}

char ____license[] __section("license") = "GPL";
