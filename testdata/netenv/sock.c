// SPDX-License-Identifier: GPL-2.0
//
// sock holds cgroup socket programs that record what their hook passes
// them into the seen array and act as the cfg array says, so that a test
// can attach them to a cgroup, make a process in it connect, send or
// bind, and compare seen with what waggle's run of the same program on the
// same context records.
//
// cfg[0]: the verdict (0 reject, 1 allow); cfg[1], cfg[2]: a non-zero
// address (IPv4, network order) and port (host order) to rewrite the
// destination to.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cfg SEC(".maps");

static __always_inline void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&seen, &slot, &v, BPF_ANY);
}

static __always_inline __u64 conf(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&cfg, &slot);

	return v ? *v : 0;
}

static __always_inline void common(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	put(0, ctx->user_family);
	put(2, ctx->user_port);
	put(3, ctx->family);
	put(4, ctx->type);
	put(5, ctx->protocol);
	put(6, sk->family);
	put(7, sk->type);
	put(8, sk->protocol);
	put(9, sk->state);
	put(10, sk->src_port);
	put(11, bpf_get_socket_cookie(ctx) != 0);
	put(12, bpf_get_netns_cookie(ctx));
	put(13, bpf_get_netns_cookie(0));
	put(14, *(__u16 *)&ctx->user_port); /* a narrow load */
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	common(ctx);
	put(1, ctx->user_ip4);
	put(15, *((__u8 *)&ctx->user_ip4 + 3));
	if (conf(1)) {
		ctx->user_ip4 = conf(1);
		ctx->user_port = bpf_htons(conf(2));
	}
	return conf(0) ? 1 : 0;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	common(ctx);
	put(1, ctx->user_ip6[0]);
	put(16, ctx->user_ip6[3]);
	put(17, *(__u64 *)&ctx->user_ip6[2]); /* a wide load */
	if (conf(2))
		ctx->user_port = bpf_htons(conf(2));
	return conf(0) ? 1 : 0;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	common(ctx);
	put(1, ctx->user_ip4);
	put(18, ctx->msg_src_ip4);
	if (conf(1)) {
		ctx->user_ip4 = conf(1);
		ctx->user_port = bpf_htons(conf(2));
	}
	return conf(0) ? 1 : 0;
}

SEC("cgroup/post_bind4")
int post_bind4(struct bpf_sock *ctx)
{
	put(20, ctx->family);
	put(21, ctx->type);
	put(22, ctx->protocol);
	put(23, ctx->src_ip4);
	put(24, ctx->src_port);
	put(25, ctx->state);
	put(26, bpf_get_socket_cookie(ctx) != 0);
	put(27, bpf_get_netns_cookie(ctx));
	return conf(0) ? 1 : 0;
}

char _license[] SEC("license") = "GPL";
