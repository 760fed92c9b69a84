// Programs whose context pointer travels: kept in r6 across helper calls,
// spilled to the stack and filled back, passed to subprograms and to a
// bpf_loop callback through a struct on the stack. progtype's tests check
// that ContextAccesses finds exactly the context accesses and that the
// rewritten programs run as they do in the kernel.
//
// Each program's subprograms live in its own section, after it, so that
// a section's listing is a whole program starting at slot 0.
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __noinline __attribute__((noinline))

enum { XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX };

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

struct __sk_buff {
	__u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto;
	__u32 priority, ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid, data, data_end;
	__u32 napi_id;
};

static long (*bpf_xdp_adjust_head)(struct xdp_md *ctx, int delta) = (void *)44;
static long (*bpf_xdp_adjust_meta)(struct xdp_md *ctx, int delta) = (void *)54;
static long (*bpf_loop)(__u32 n, void *fn, void *ctx, __u64 flags) = (void *)181;
static long (*bpf_skb_store_bytes)(struct __sk_buff *skb, __u32 off, const void *from, __u32 len, __u64 flags) = (void *)9;

// The context stays in a callee-saved register across a helper call.
SEC("xdp/r6") int in_r6(struct xdp_md *ctx)
{
	long r = bpf_xdp_adjust_head(ctx, -14);
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if (data + 14 > end)
		return XDP_DROP;
	return r == 0 ? XDP_PASS : XDP_ABORTED;
}

// The context is spilled to the stack and filled back.
SEC("xdp/spill") int spilled(struct xdp_md *ctx)
{
	struct xdp_md *volatile saved = ctx;

	bpf_xdp_adjust_meta(ctx, -4);
	struct xdp_md *c = saved;
	void *meta = (void *)(long)c->data_meta;
	void *data = (void *)(long)c->data;

	if (meta + 4 > data)
		return XDP_ABORTED;
	*(__u32 *)meta = 0x11223344;
	return c->ingress_ifindex + c->rx_queue_index;
}

// The context goes to a subprogram; another takes a pointer to the stack.
static int len_of(struct xdp_md *ctx);
static int sum4(__u32 *p);

SEC("xdp/sub") int sub(struct xdp_md *ctx)
{
	__u32 a[4] = {ctx->ingress_ifindex, 2, 3, 4};

	return len_of(ctx) + sum4(a);
}

static __noinline SEC("xdp/sub") int len_of(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

static __noinline SEC("xdp/sub") int sum4(__u32 *p)
{
	return p[0] + p[1] + p[2] + p[3];
}

// A bpf_loop callback reaches the context through a struct on the
// caller's stack.
struct loop_ctx {
	struct xdp_md *ctx;
	__u32 sum;
};

static long step(__u32 i, struct loop_ctx *c);

SEC("xdp/loop") int loop(struct xdp_md *ctx)
{
	struct loop_ctx c = {ctx, 0};

	bpf_loop(4, step, &c, 0);
	return c.sum;
}

static __noinline SEC("xdp/loop") long step(__u32 i, struct loop_ctx *c)
{
	c->sum += c->ctx->ingress_ifindex + c->ctx->rx_queue_index + i;
	return 0;
}

// A tc program: narrow loads, writes of the writable fields, cb as an
// array indexed by a constant, and a helper between them.
SEC("tc/fields") int fields(struct __sk_buff *skb)
{
	__u8 hi = ((volatile __u8 *)&skb->mark)[1];
	__u16 proto = *(volatile __u16 *)&skb->protocol;

	skb->cb[0] = skb->len;
	skb->cb[3] = proto;
	skb->mark = skb->mark ^ 0x5a5a;
	skb->priority = hi;
	skb->tc_index = 7;
	__u32 v = skb->cb[0];
	bpf_skb_store_bytes(skb, 0, &v, 1, 0);
	return skb->cb[0] + skb->cb[3] + skb->ifindex;
}
