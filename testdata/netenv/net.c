// SPDX-License-Identifier: GPL-2.0
//
// net calls the helpers that ask the host about its network (routes,
// neighbours, sockets, tunnels, redirects) with arguments taken from the
// packet, and writes what they return back into the packet, so that a test
// can run the same request through BPF_PROG_TEST_RUN in a network namespace
// and through waggle with that namespace's model and compare the bytes.
//
// Every request starts after a 14-byte Ethernet header (EtherType 0x88b5,
// local experimental, so no stack looks further) and every program returns
// XDP_PASS or TC_ACT_OK unless it returns what a redirect helper returned,
// or SHORT for a packet too short for its request.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Flags newer than the installed UAPI header. */
#define FIB_MARK (1U << 5)
#define F_NO_TUNNEL_KEY (1ULL << 4)

/* struct bpf_fib_lookup as Linux 6.18 lays it out (64 bytes). */
struct fib {
	__u8 family;
	__u8 l4_protocol;
	__be16 sport;
	__be16 dport;
	__u16 tot_len;
	__u32 ifindex;
	__u32 tos;
	__u32 src[4];
	__u32 dst[4];
	__u32 tbid;
	__u8 macs[12];
};

struct fib_req {
	__u32 flags;
	__s32 rc;
	__u32 plen; /* 0: sizeof(struct fib), else a short 32 */
	__u32 pad;
	struct fib p;
};

/* SHORT is what a program returns when the packet is too short for its
 * request, so that a test cannot mistake a request of the wrong layout
 * for an answer. */
#define SHORT 99

static __always_inline void *req(void *data, void *end, __u32 size)
{
	if (data + 14 + size > end)
		return 0;
	return data + 14;
}

#define FIB_BODY(ctx, data, end)                                                   \
	struct fib_req *r = req(data, end, sizeof(*r));                            \
	if (!r)                                                                    \
		return SHORT;                                                      \
	struct fib p = r->p;                                                       \
	long rc;                                                                   \
	if (r->plen == 0)                                                          \
		rc = bpf_fib_lookup(ctx, (void *)&p, sizeof(p), r->flags);         \
	else                                                                       \
		rc = bpf_fib_lookup(ctx, (void *)&p, 32, r->flags);                \
	r->rc = rc;                                                                \
	r->p = p;

SEC("xdp")
int xdp_fib(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	FIB_BODY(ctx, data, end)
	return XDP_PASS;
}

SEC("tc")
int tc_fib(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	FIB_BODY(ctx, data, end)
	return TC_ACT_OK;
}

struct mtu_req {
	__u32 ifindex;
	__u32 mtu_len;
	__s32 len_diff;
	__u32 flags;
	__s32 rc;
};

SEC("xdp")
int xdp_mtu(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct mtu_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	__u32 mtu = r->mtu_len;
	r->rc = bpf_check_mtu(ctx, r->ifindex, &mtu, r->len_diff, r->flags);
	r->mtu_len = mtu;
	return XDP_PASS;
}

SEC("tc")
int tc_mtu(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct mtu_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	__u32 mtu = r->mtu_len;
	r->rc = bpf_check_mtu(ctx, r->ifindex, &mtu, r->len_diff, r->flags);
	r->mtu_len = mtu;
	return TC_ACT_OK;
}

/* Redirects: op 0 bpf_redirect, 1 bpf_redirect_neigh without a nexthop, 2
 * with one, 3 with a short nexthop, 4 bpf_redirect_peer, 5
 * bpf_clone_redirect (whose result is stored, the program returning
 * TC_ACT_OK). */
struct redirect_req {
	__u32 op;
	__u32 ifindex;
	__u64 flags;
	__s64 rc;
	struct bpf_redir_neigh nh;
};

SEC("tc")
int tc_redirect(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct redirect_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	struct bpf_redir_neigh nh = r->nh;
	__u32 ifindex = r->ifindex;
	__u64 flags = r->flags;
	long rc;
	switch (r->op) {
	case 0:
		rc = bpf_redirect(ifindex, flags);
		break;
	case 1:
		rc = bpf_redirect_neigh(ifindex, 0, 0, flags);
		break;
	case 2:
		rc = bpf_redirect_neigh(ifindex, &nh, sizeof(nh), flags);
		break;
	case 3:
		rc = bpf_redirect_neigh(ifindex, &nh, sizeof(nh) - 4, flags);
		break;
	case 4:
		rc = bpf_redirect_peer(ifindex, flags);
		break;
	default:
		/* The clone leaves; the packet buffer is the original's. */
		rc = bpf_clone_redirect(ctx, ifindex, flags);
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		r = req(data, end, sizeof(*r));
		if (!r)
			return SHORT;
		r->rc = rc;
		return TC_ACT_OK;
	}
	r->rc = rc;
	return rc;
}

/* Tunnel metadata: set a key (set_size 20, 22, 24, 28 or 44; 0 for none),
 * set options (opt_len 4, 6, 8 or 12; 0 for none), then get the key
 * (get_size 8, 22, 24, 28 or 44) and the options (opt_get 4, 8 or 16)
 * back. */
struct tunnel_req {
	__u32 set_size;
	__u32 get_size;
	__u64 set_flags;
	__u64 get_flags;
	__u32 opt_len;
	__u32 opt_get;
	__s32 rc_set, rc_opt, rc_get, rc_get_opt;
	struct bpf_tunnel_key key;
	struct bpf_tunnel_key out;
	__u8 opt[16];
	__u8 opt_out[16];
};

/* One function per size, so that clang cannot merge the calls into one
 * with a variable size, which the verifier refuses. */
#define SIZED(name, call, type, size)                                               \
	static __attribute__((noinline)) long name##_##size(struct __sk_buff *ctx, \
							    type p, __u64 f)        \
	{                                                                           \
		return call(ctx, p, size, f);                                       \
	}
#define OPT(name, call, size)                                                       \
	static __attribute__((noinline)) long name##_##size(struct __sk_buff *ctx, \
							    __u8 *p)                \
	{                                                                           \
		return call(ctx, p, size);                                          \
	}

SIZED(set_key, bpf_skb_set_tunnel_key, struct bpf_tunnel_key *, 20)
SIZED(set_key, bpf_skb_set_tunnel_key, struct bpf_tunnel_key *, 22)
SIZED(set_key, bpf_skb_set_tunnel_key, struct bpf_tunnel_key *, 24)
SIZED(set_key, bpf_skb_set_tunnel_key, struct bpf_tunnel_key *, 28)
SIZED(set_key, bpf_skb_set_tunnel_key, struct bpf_tunnel_key *, 44)
SIZED(get_key, bpf_skb_get_tunnel_key, struct bpf_tunnel_key *, 8)
SIZED(get_key, bpf_skb_get_tunnel_key, struct bpf_tunnel_key *, 22)
SIZED(get_key, bpf_skb_get_tunnel_key, struct bpf_tunnel_key *, 24)
SIZED(get_key, bpf_skb_get_tunnel_key, struct bpf_tunnel_key *, 28)
SIZED(get_key, bpf_skb_get_tunnel_key, struct bpf_tunnel_key *, 44)
OPT(set_opt, bpf_skb_set_tunnel_opt, 4)
OPT(set_opt, bpf_skb_set_tunnel_opt, 6)
OPT(set_opt, bpf_skb_set_tunnel_opt, 8)
OPT(set_opt, bpf_skb_set_tunnel_opt, 12)
OPT(get_opt, bpf_skb_get_tunnel_opt, 4)
OPT(get_opt, bpf_skb_get_tunnel_opt, 8)
OPT(get_opt, bpf_skb_get_tunnel_opt, 16)

SEC("tc")
int tc_tunnel(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct tunnel_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	struct bpf_tunnel_key key = r->key, out = {};
	__u8 opt[16], opt_out[16] = {};
	__builtin_memcpy(opt, r->opt, sizeof(opt));
	__u64 set_flags = r->set_flags, get_flags = r->get_flags;
	__u32 set_size = r->set_size, get_size = r->get_size, opt_len = r->opt_len, opt_get = r->opt_get;
	long rc_set = 0, rc_opt = 0, rc_get = 0, rc_get_opt = 0;

	if (set_size == 20)
		rc_set = set_key_20(ctx, &key, set_flags);
	else if (set_size == 22)
		rc_set = set_key_22(ctx, &key, set_flags);
	else if (set_size == 24)
		rc_set = set_key_24(ctx, &key, set_flags);
	else if (set_size == 28)
		rc_set = set_key_28(ctx, &key, set_flags);
	else if (set_size == 44)
		rc_set = set_key_44(ctx, &key, set_flags);

	if (opt_len == 4)
		rc_opt = set_opt_4(ctx, opt);
	else if (opt_len == 6)
		rc_opt = set_opt_6(ctx, opt);
	else if (opt_len == 8)
		rc_opt = set_opt_8(ctx, opt);
	else if (opt_len == 12)
		rc_opt = set_opt_12(ctx, opt);

	if (get_size == 8)
		rc_get = get_key_8(ctx, &out, get_flags);
	else if (get_size == 22)
		rc_get = get_key_22(ctx, &out, get_flags);
	else if (get_size == 24)
		rc_get = get_key_24(ctx, &out, get_flags);
	else if (get_size == 28)
		rc_get = get_key_28(ctx, &out, get_flags);
	else if (get_size == 44)
		rc_get = get_key_44(ctx, &out, get_flags);

	if (opt_get == 4)
		rc_get_opt = get_opt_4(ctx, opt_out);
	else if (opt_get == 8)
		rc_get_opt = get_opt_8(ctx, opt_out);
	else if (opt_get == 16)
		rc_get_opt = get_opt_16(ctx, opt_out);

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	r->rc_set = rc_set;
	r->rc_opt = rc_opt;
	r->rc_get = rc_get;
	r->rc_get_opt = rc_get_opt;
	r->out = out;
	__builtin_memcpy(r->opt_out, opt_out, sizeof(opt_out));
	return TC_ACT_OK;
}

/* Socket lookups: look the tuple up (op 0 bpf_sk_lookup_tcp, 1
 * bpf_sk_lookup_udp, 2 bpf_skc_lookup_tcp), copy what the program may read
 * of the socket, release it, and with assign set try bpf_sk_assign. */
struct sk_req {
	__u32 op;
	__u32 len; /* 12 (IPv4), 36 (IPv6) or another size */
	__u64 netns;
	__u64 flags;
	__u32 assign;
	__s32 found;
	__s32 rc_assign;
	__u32 family, type, protocol, state, bound_dev_if, mark, priority;
	__u32 src_ip4, src_port, dst_port, dst_ip4;
	__u32 src_ip6[4], dst_ip6[4];
	__s32 rx_queue_mapping;
	struct bpf_sock_tuple tuple;
};

#define SK_COMMON(o, sk)                                                            \
	o.found = 1;                                                                \
	o.family = sk->family;                                                      \
	o.state = sk->state;                                                        \
	o.bound_dev_if = sk->bound_dev_if;                                          \
	o.src_ip4 = sk->src_ip4;                                                    \
	o.src_port = sk->src_port;                                                  \
	o.dst_port = sk->dst_port;                                                  \
	o.dst_ip4 = sk->dst_ip4;                                                    \
	o.src_ip6[0] = sk->src_ip6[0];                                              \
	o.src_ip6[1] = sk->src_ip6[1];                                              \
	o.src_ip6[2] = sk->src_ip6[2];                                              \
	o.src_ip6[3] = sk->src_ip6[3];                                              \
	o.dst_ip6[0] = sk->dst_ip6[0];                                              \
	o.dst_ip6[1] = sk->dst_ip6[1];                                              \
	o.dst_ip6[2] = sk->dst_ip6[2];                                              \
	o.dst_ip6[3] = sk->dst_ip6[3];

#define SK_FULL(o, sk)                                                              \
	SK_COMMON(o, sk)                                                            \
	o.type = sk->type;                                                          \
	o.protocol = sk->protocol;                                                  \
	o.mark = sk->mark;                                                          \
	o.priority = sk->priority;                                                  \
	o.rx_queue_mapping = sk->rx_queue_mapping;

/* One lookup, its reads, the assign and the release. */
#define SK_ONE(ctx, lookup, size, READ)                                              \
	{                                                                           \
		struct bpf_sock *sk = lookup(ctx, &t, size, netns, flags);          \
		if (sk) {                                                           \
			READ(o, sk)                                                 \
			ASSIGN(ctx, sk, assign, o);                                 \
			bpf_sk_release(sk);                                         \
		}                                                                   \
	}

/* SK_BODY looks the tuple up with bpf_sk_lookup_tcp (op 0) or
 * bpf_sk_lookup_udp (op 1); SKC_BODY with bpf_skc_lookup_tcp, whose result
 * only the sock_common fields may be read of. */
#define SK_HEAD(data, end)                                                          \
	struct sk_req *r = req(data, end, sizeof(*r));                              \
	if (!r)                                                                     \
		return SHORT;                                                       \
	struct bpf_sock_tuple t = r->tuple;                                         \
	__u64 netns = r->netns, flags = r->flags;                                   \
	__u32 op = r->op, assign __attribute__((unused)) = r->assign;               \
	struct sk_req o = {};

#define SK_BODY(ctx, data, end)                                                     \
	SK_HEAD(data, end)                                                          \
	if (r->len == 12) {                                                         \
		if (op == 0)                                                        \
			SK_ONE(ctx, bpf_sk_lookup_tcp, 12, SK_FULL)                 \
		else                                                                \
			SK_ONE(ctx, bpf_sk_lookup_udp, 12, SK_FULL)                 \
	} else if (r->len == 36) {                                                  \
		if (op == 0)                                                        \
			SK_ONE(ctx, bpf_sk_lookup_tcp, 36, SK_FULL)                 \
		else                                                                \
			SK_ONE(ctx, bpf_sk_lookup_udp, 36, SK_FULL)                 \
	} else {                                                                    \
		SK_ONE(ctx, bpf_sk_lookup_tcp, 8, SK_FULL)                          \
	}

#define SKC_BODY(ctx, data, end)                                                    \
	SK_HEAD(data, end)                                                          \
	(void)op;                                                                   \
	if (r->len == 12)                                                           \
		SK_ONE(ctx, bpf_skc_lookup_tcp, 12, SK_COMMON)                      \
	else                                                                        \
		SK_ONE(ctx, bpf_skc_lookup_tcp, 36, SK_COMMON)

#define SK_TAIL(data, end)                                                          \
	data = (void *)(long)ctx->data;                                             \
	end = (void *)(long)ctx->data_end;                                          \
	r = req(data, end, sizeof(*r));                                             \
	if (!r)                                                                     \
		return SHORT;                                                       \
	o.tuple = r->tuple;                                                         \
	o.op = r->op;                                                               \
	o.len = r->len;                                                             \
	o.netns = r->netns;                                                         \
	o.flags = r->flags;                                                         \
	o.assign = r->assign;                                                       \
	*r = o;

#define NO_ASSIGN(ctx, sk, assign, o)
#define TC_ASSIGN(ctx, sk, assign, o)                                               \
	if (assign)                                                                 \
		o.rc_assign = bpf_sk_assign(ctx, sk, assign - 1);

SEC("xdp")
int xdp_sk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
#define ASSIGN NO_ASSIGN
	SK_BODY(ctx, data, end)
	SK_TAIL(data, end)
	return XDP_PASS;
}

SEC("xdp")
int xdp_skc(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	SKC_BODY(ctx, data, end)
	SK_TAIL(data, end)
	return XDP_PASS;
}
#undef ASSIGN

SEC("tc")
int tc_sk(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
#define ASSIGN TC_ASSIGN
	SK_BODY(ctx, data, end)
	SK_TAIL(data, end)
	return TC_ACT_OK;
}

SEC("tc")
int tc_skc(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	SKC_BODY(ctx, data, end)
	SK_TAIL(data, end)
	return TC_ACT_OK;
}
#undef ASSIGN

/* A TCP socket's struct bpf_tcp_sock, found through bpf_sk_lookup_tcp, and
 * the socket helpers given the bpf_tcp_sock pointer (which Linux takes
 * where a socket is expected). */
struct sk_tcp_req {
	struct sk_req in; /* op, len, netns and tuple are used */
	__s32 found, tcp, full, listener;
	__u32 state;
	__u32 t[14];
};

SEC("tc")
int tc_sk_tcp(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct sk_tcp_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	struct bpf_sock_tuple t = r->in.tuple;
	__u64 netns = r->in.netns;
	struct bpf_sock *sk;
	if (r->in.len == 12)
		sk = bpf_sk_lookup_tcp(ctx, &t, 12, netns, 0);
	else
		sk = bpf_sk_lookup_tcp(ctx, &t, 36, netns, 0);
	__s32 found = 0, tcp = 0, full = 0, listener = 0;
	__u32 state = 0, v[14] = {};
	if (sk) {
		found = 1;
		struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
		if (tp) {
			tcp = 1;
			v[0] = tp->snd_cwnd;
			v[1] = tp->srtt_us;
			v[2] = tp->rtt_min;
			v[3] = tp->snd_ssthresh;
			v[4] = tp->rcv_nxt;
			v[5] = tp->snd_nxt;
			v[6] = tp->snd_una;
			v[7] = tp->mss_cache;
			v[8] = tp->ecn_flags;
			v[9] = tp->packets_out;
			v[10] = tp->retrans_out;
			v[11] = tp->total_retrans;
			v[12] = tp->lost_out;
			v[13] = tp->sacked_out;
			struct bpf_sock *f = bpf_sk_fullsock((struct bpf_sock *)tp);
			if (f) {
				full = 1;
				state = f->state;
			}
			if (bpf_get_listener_sock((struct bpf_sock *)tp))
				listener = 1;
		}
		bpf_sk_release(sk);
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	r->found = found;
	r->tcp = tcp;
	r->full = full;
	r->listener = listener;
	r->state = state;
	for (int i = 0; i < 14; i++)
		r->t[i] = v[i];
	return TC_ACT_OK;
}

/* The socket of the packet itself: its cookie and owner. */
struct cookie_req {
	__u64 cookie;
	__u32 uid;
	__u32 pad;
};

SEC("tc")
int tc_cookie(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct cookie_req *r = req(data, end, sizeof(*r));
	if (!r)
		return SHORT;
	r->cookie = bpf_get_socket_cookie(ctx);
	r->uid = bpf_get_socket_uid(ctx);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
