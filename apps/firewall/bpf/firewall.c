//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// firewall is waggle's XDP firewall and DDoS dropper, for IPv4 and IPv6.
// A packet goes through these steps, and the first that decides gives the
// verdict and the id of the deciding rule:
//
//	parse        malformed headers (RULE_MALFORMED), fragments (RULE_FRAGMENT),
//	             non-IP traffic passes (RULE_NOT_IP)
//	allow4/6     LPM tries: the longest matching prefix's rule passes the packet
//	deny4/6      LPM tries: the longest matching prefix's rule drops it
//	attack       a global packet rate over a mark halves every limit below
//	cookies      under attack, with FW_F_SYN_COOKIES: a TCP SYN is answered with
//	             a SYN-cookie SYN-ACK (XDP_TX, RULE_SYN_COOKIE), an ACK whose
//	             cookie checks passes (RULE_SYN_COOKIE_ACK); see syn_cookie
//	syn          per-source rate of TCP SYNs (RULE_SYN_RATE)
//	amp          per-source rate of UDP from ports 53, 123, 1900, 11211
//	rate         per-source packets/s and bytes/s (RULE_RATE_PPS, RULE_RATE_BPS)
//	default      passes (RULE_DEFAULT)
//
// Every rate limit is a GCRA token bucket (the "virtual scheduling" form):
// a bucket holds the theoretical arrival time of the next packet, and a
// packet conforms when it arrives no earlier than that minus the burst
// tolerance. Buckets live in an LRU hash keyed by the source masked to the
// configured prefix length.
//
// Time is bpf_ktime_get_ns, unless FW_F_REPLAY is set and the packet
// carries 16 bytes of XDP metadata (struct replay_meta): then the first 8
// are the time, and the program writes the deciding rule's id into the
// next 4. That is how `waggle firewall replay` drives the buckets from a
// capture's timestamps and learns each packet's rule, reproducibly, in the
// kernel (BPF_PROG_TEST_RUN, whose data_out starts at data_meta) and in
// user space alike. Attached to an interface, FW_F_REPLAY stays clear.
//
// Each verdict counts in the per-CPU array "counters" at its rule id and,
// for an IP packet, in the per-CPU LRU hash "talkers" at its source
// address (with the rule, for "top talkers"; not with FW_F_NO_TALKERS);
// and one dropped packet in every config.sample_every goes, with its rule id,
// its action and the time the program decided it, to the ring buffer
// "samples". With FW_F_SAMPLE_ALL every verdict is a candidate, not only
// drops: with sample_every 1 the ring then sees each packet, which is how
// a test (or `waggle firewall capture --all`) replays exactly what the
// program decided attached, with its clock. A sample the ring buffer has no
// room for counts in "drops" at DROPS_LOST, per CPU.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_RULES 4096
#define MAX_PREFIXES (1 << 20)
#define SAMPLE_BYTES 128
#define MAX_TALKERS 16384

/* Fixed rule ids; those of the configuration's rules start at RULE_FIRST_USER. */
enum {
	RULE_DEFAULT = 0,
	RULE_NOT_IP = 1,
	RULE_MALFORMED = 2,
	RULE_FRAGMENT = 3,
	RULE_SYN_RATE = 4,
	RULE_AMP_DNS = 5,
	RULE_AMP_NTP = 6,
	RULE_AMP_SSDP = 7,
	RULE_AMP_MEMCACHED = 8,
	RULE_RATE_PPS = 9,
	RULE_RATE_BPS = 10,
	RULE_SYN_COOKIE = 11,
	RULE_SYN_COOKIE_ACK = 12,
	RULE_FIRST_USER = 16,
};

/* config.flags */
#define FW_F_DROP_FRAGMENTS (1 << 0)
#define FW_F_DROP_MALFORMED (1 << 1)
#define FW_F_REPLAY (1 << 2)
#define FW_F_NO_TALKERS (1 << 3)
#define FW_F_SAMPLE_ALL (1 << 4) /* sample every verdict, not only drops */
#define FW_F_SYN_COOKIES (1 << 8)

/* A bucket's rate: interval is nanoseconds per packet (or per byte, in
 * 1/65536 ns for bytes), tolerance the burst in nanoseconds; interval 0
 * means no limit. */
struct limit {
	__u64 interval;
	__u64 tolerance;
};

struct config {
	__u32 flags;
	__u8 prefix4; /* source mask of the per-source buckets */
	__u8 prefix6;
	__u16 pad;
	struct limit pps;
	struct limit bps; /* interval in 1/65536 ns per byte */
	struct limit syn;
	struct limit amp[4]; /* source ports 53, 123, 1900, 11211 */
	__u64 attack_pps; /* the global mark; 0: never under attack */
	__u64 sample_every; /* sample one drop (FW_F_SAMPLE_ALL: packet) in this many; 0: none */
};

struct lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* What a prefix of a list carries: its rule, and the rule's filter. */
struct rule {
	__u32 id;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP...; 0 for any */
	__u8 pad;
	__u16 port_lo; /* destination port range, host order; 0-0 for any */
	__u16 port_hi;
	__u16 pad2;
};

struct bucket_key {
	__u8 kind; /* BUCKET_* */
	__u8 family; /* 4 or 6 */
	__u16 pad;
	__u8 addr[16];
};

enum { BUCKET_RATE, BUCKET_SYN, BUCKET_AMP };

struct bucket {
	__u64 tat; /* theoretical arrival time of the next packet */
	__u64 tat_bytes;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* A source address, as the parser found it: family 4 or 6. */
struct talker_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16]; /* an IPv4 address in the first 4 bytes, zeros after */
};

/* What one source sent, on one CPU. */
struct talker {
	__u64 packets;
	__u64 bytes;
	__u64 last; /* the program's clock at its last packet */
	__u32 rule; /* the rule that decided its last packet */
	__u32 pad;
};

struct attack {
	__u64 second; /* the current one-second window */
	__u64 packets; /* in it */
	__u64 on; /* 1 while under attack */
};

struct sample {
	__u32 rule;
	__u32 len; /* of the packet */
	__u64 time; /* the program's clock at the verdict */
	__u8 data[SAMPLE_BYTES];
	__u32 action; /* XDP_DROP, XDP_PASS... */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_PREFIXES);
	__type(key, struct lpm4);
	__type(value, struct rule);
} allow4 SEC(".maps"), deny4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_PREFIXES);
	__type(key, struct lpm6);
	__type(value, struct rule);
} allow6 SEC(".maps"), deny6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bucket_key);
	__type(value, struct bucket);
} buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_TALKERS);
	__type(key, struct talker_key);
	__type(value, struct talker);
} talkers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct attack);
} attack SEC(".maps");

/* Per CPU, at DROPS_CANDIDATES the sampling candidates (drops; every verdict
 * with FW_F_SAMPLE_ALL) it saw, the cadence of config.sample_every; at
 * DROPS_LOST the samples the ring buffer had no room for. */
enum { DROPS_CANDIDATES = 0, DROPS_LOST = 1 };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} samples SEC(".maps");

/* The metadata of a replayed packet, in host byte order. */
struct replay_meta {
	__u64 time; /* in: nanoseconds */
	__u32 rule; /* out: the deciding rule's id */
	__u32 pad;
};

struct vlan {
	__be16 tci;
	__be16 proto;
};

/* pkt is what parsing found. */
struct pkt {
	__u8 family;
	__u8 l4proto;
	__u8 syn; /* a TCP SYN without ACK */
	__u8 frag; /* a fragment; frag > 1: not the first, no L4 header */
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
};

enum { PARSE_OK, PARSE_NOT_IP, PARSE_MALFORMED };

static __always_inline int parse_l4(struct pkt *p, void *l4, void *end)
{
	if (p->frag > 1)
		return PARSE_OK;
	if (p->l4proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end || tcp->doff < 5)
			return PARSE_MALFORMED;
		if (tcp->syn && tcp->fin)
			return PARSE_MALFORMED;
		p->syn = tcp->syn && !tcp->ack;
		p->sport = bpf_ntohs(tcp->source);
		p->dport = bpf_ntohs(tcp->dest);
	} else if (p->l4proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return PARSE_MALFORMED;
		p->sport = bpf_ntohs(udp->source);
		p->dport = bpf_ntohs(udp->dest);
	}
	return PARSE_OK;
}

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan *v = l3;

		if ((void *)(v + 1) > end)
			return PARSE_MALFORMED;
		proto = v->proto;
		l3 = v + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		__u32 hlen, tot;

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return PARSE_MALFORMED;
		hlen = ip->ihl * 4;
		tot = bpf_ntohs(ip->tot_len);
		if (tot < hlen || l3 + tot > end)
			return PARSE_MALFORMED;
		p->family = 4;
		p->l4proto = ip->protocol;
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		if (ip->frag_off & bpf_htons(0x1fff))
			p->frag = 2;
		else if (ip->frag_off & bpf_htons(0x2000))
			p->frag = 1;
		return parse_l4(p, l3 + hlen, end);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		void *l4;
		__u8 next;

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return PARSE_MALFORMED;
		if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
			return PARSE_MALFORMED;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		next = ip6->nexthdr;
		l4 = ip6 + 1;
		/* At most four extension headers. */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u8 *ext = l4;

			if (next == IPPROTO_FRAGMENT) {
				if ((void *)(ext + 8) > end)
					return PARSE_MALFORMED;
				/* offset (13 bits) and M in bytes 2-3 */
				p->frag = (ext[2] << 5 | ext[3] >> 3) ? 2 : 1;
				next = ext[0];
				l4 = ext + 8;
			} else if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
				if ((void *)(ext + 8) > end)
					return PARSE_MALFORMED;
				next = ext[0];
				l4 = ext + (ext[1] + 1) * 8;
			} else {
				break;
			}
		}
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
		    next == IPPROTO_FRAGMENT)
			return PARSE_MALFORMED; /* more than four */
		p->l4proto = next;
		return parse_l4(p, l4, end);
	}
	return PARSE_NOT_IP;
}

/* match looks the source up in a list and applies the rule's filter;
 * it returns the rule id, or 0. */
static __always_inline __u32 match(void *list4, void *list6, struct pkt *p)
{
	struct rule *r;

	if (p->family == 4) {
		struct lpm4 k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, p->saddr, 4);
		r = bpf_map_lookup_elem(list4, &k);
	} else {
		struct lpm6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, p->saddr, 16);
		r = bpf_map_lookup_elem(list6, &k);
	}
	if (!r)
		return 0;
	if (r->proto && r->proto != p->l4proto)
		return 0;
	if (r->port_hi && (p->frag > 1 || p->dport < r->port_lo || p->dport > r->port_hi))
		return 0;
	return r->id;
}

/* conform is GCRA: whether a packet of cost (in the limit's interval
 * units) arriving at now fits tat, which it advances if so. Under
 * attack the callers double the cost and halve the tolerance. */
static __always_inline int conform(__u64 *tat, __u64 now, __u64 cost, __u64 tolerance)
{
	__u64 t = *tat;

	if (t < now)
		t = now;
	if (t - now > tolerance)
		return 0;
	*tat = t + cost;
	return 1;
}

static __always_inline struct bucket *bucket(struct pkt *p, __u8 kind, __u8 prefix4, __u8 prefix6, __u64 now)
{
	struct bucket_key k = { .kind = kind, .family = p->family };
	struct bucket *b;
	__u32 bits;

	__builtin_memcpy(k.addr, p->saddr, 16);
	if (p->family == 4) {
		__u32 a;

		__builtin_memcpy(&a, k.addr, 4);
		bits = prefix4 > 32 ? 32 : prefix4;
		a = bits ? bpf_ntohl(a) & ~((1ULL << (32 - bits)) - 1) : 0;
		a = bpf_htonl(a);
		__builtin_memcpy(k.addr, &a, 4);
		__builtin_memset(k.addr + 4, 0, 12);
	} else {
		__u64 hi, lo;

		__builtin_memcpy(&hi, k.addr, 8);
		__builtin_memcpy(&lo, k.addr + 8, 8);
		hi = bpf_be64_to_cpu(hi);
		lo = bpf_be64_to_cpu(lo);
		bits = prefix6 > 128 ? 128 : prefix6;
		if (bits <= 64) {
			lo = 0;
			hi = bits ? hi & ~((1ULL << (64 - bits)) - 1) : 0;
		} else {
			lo &= ~((1ULL << (128 - bits)) - 1);
		}
		hi = bpf_cpu_to_be64(hi);
		lo = bpf_cpu_to_be64(lo);
		__builtin_memcpy(k.addr, &hi, 8);
		__builtin_memcpy(k.addr + 8, &lo, 8);
	}
	b = bpf_map_lookup_elem(&buckets, &k);
	if (b)
		return b;
	struct bucket fresh = { .tat = now, .tat_bytes = now };

	bpf_map_update_elem(&buckets, &k, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&buckets, &k);
}

/* under_attack counts the packet in the global window and says whether
 * the limits are tightened: on once a second's packets exceed the mark,
 * off once a second's fall under half of it. */
static __always_inline int under_attack(struct config *c, __u64 now)
{
	__u32 zero = 0;
	struct attack *a;
	__u64 sec = now / 1000000000;

	if (!c->attack_pps)
		return 0;
	a = bpf_map_lookup_elem(&attack, &zero);
	if (!a)
		return 0;
	if (a->second != sec) {
		/* The window a->second ended; a window that saw nothing (a gap
		 * of more than a second) also ends an attack. */
		__u64 n = a->second + 1 == sec ? a->packets : 0;

		if (n > c->attack_pps)
			a->on = 1;
		else if (n < c->attack_pps / 2)
			a->on = 0;
		a->second = sec;
		a->packets = 0;
	}
	__sync_fetch_and_add(&a->packets, 1);
	if (a->packets > c->attack_pps)
		a->on = 1;
	return a->on != 0;
}

/* talk counts a packet of len bytes, decided by rule, for its source. */
static __always_inline void talk(struct pkt *p, __u32 rule, __u32 len, __u64 now)
{
	struct talker_key k = { .family = p->family };
	struct talker *t;

	__builtin_memcpy(k.addr, p->saddr, 16);
	t = bpf_map_lookup_elem(&talkers, &k);
	if (t) {
		t->packets++;
		t->bytes += len;
		t->last = now;
		t->rule = rule;
		return;
	}
	struct talker fresh = { .packets = 1, .bytes = len, .last = now, .rule = rule };

	bpf_map_update_elem(&talkers, &k, &fresh, BPF_ANY);
}

static __always_inline int verdict(struct xdp_md *ctx, struct config *c, struct pkt *p, __u32 rule, int action,
				   __u64 now)
{
	__u32 len = ctx->data_end - ctx->data;
	struct counter *n = bpf_map_lookup_elem(&counters, &rule);

	if (c->flags & FW_F_REPLAY) {
		struct replay_meta *m = (void *)(long)ctx->data_meta;

		if ((void *)(m + 1) <= (void *)(long)ctx->data)
			m->rule = rule;
	}
	if (n) {
		n->packets++;
		n->bytes += len;
	}
	if (p->family && !(c->flags & FW_F_NO_TALKERS))
		talk(p, rule, len, now);
	if ((action == XDP_DROP || (c->flags & FW_F_SAMPLE_ALL)) && c->sample_every) {
		__u32 zero = DROPS_CANDIDATES;
		__u64 *d = bpf_map_lookup_elem(&drops, &zero);

		if (d && (*d)++ % c->sample_every == 0) {
			struct sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);

			if (s) {
				__u64 cp = len;

				/* Hide that cp is 32 bits wide, so that clang compares all 64
				 * and the verifier bounds them. */
				asm volatile("" : "+r"(cp));

				s->rule = rule;
				s->len = len;
				s->time = now;
				s->action = action;
				s->pad = 0;
				if (cp > SAMPLE_BYTES)
					cp = SAMPLE_BYTES;
				if (cp < ETH_HLEN)
					cp = ETH_HLEN;
				if (bpf_xdp_load_bytes(ctx, 0, s->data, cp))
					__builtin_memset(s->data, 0, SAMPLE_BYTES);
				bpf_ringbuf_submit(s, 0);
			} else {
				__u32 lost = DROPS_LOST;
				__u64 *l = bpf_map_lookup_elem(&drops, &lost);

				if (l)
					(*l)++;
			}
		}
	}
	return action;
}

static const __u16 amp_ports[4] = { 53, 123, 1900, 11211 };

/* SYN cookies.
 *
 * fw_cookie_helpers says whether the kernel has the socket-less SYN cookie
 * helpers (bpf_tcp_raw_gen_syncookie_ipv4, Linux 6.0). The loader clears it
 * where they are missing: the verifier then knows the branch that calls
 * them is dead, never checks the calls, and the program loads; the
 * per-source SYN rate is then all the SYN protection there is.
 */
volatile const __u32 fw_cookie_helpers = 1;

/* syn_passed holds, by TCP destination port, when a SYN to it last went to
 * the stack. A listener accepts cookie ACKs only for two minutes after it
 * last answered a SYN with a cookie itself (tcp_synq_no_recent_overflow),
 * which it does for every SYN with net.ipv4.tcp_syncookies=2: so even under
 * attack one SYN a minute per port goes on to the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} syn_passed SEC(".maps");

#define SYN_REFRESH_NS (60ULL * 1000000000)
#define COOKIE_TCP_LEN 24 /* the SYN-ACK's TCP header: the MSS option only */
#define COOKIE_MAX_L3 18 /* Ethernet and one VLAN tag */

/* The headers of a SYN or ACK as syn_cookie reads them, and the SYN-ACK it
 * writes: the link layer, the IP header and the TCP header. */
struct cookie_hdrs {
	__u8 l2[COOKIE_MAX_L3];
	__u8 pad[2];
	union {
		struct iphdr ip4;
		struct ipv6hdr ip6;
	};
	__u8 tcp[60];
};

/* csum_fold folds a 32-bit sum of 16-bit words into a checksum. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* csum_words adds n 16-bit words (n constant) at p. */
static __always_inline __u32 csum_words(__u32 sum, const void *p, int n)
{
	const __u16 *w = p;

#pragma unroll
	for (int i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* syn_reply turns the SYN in h into its SYN-ACK carrying cookie and
 * announcing mss: the addresses and ports swapped, seq = cookie,
 * ack = the SYN's seq + 1, the MSS option alone, fresh checksums. */
static __always_inline void syn_reply(struct cookie_hdrs *h, __u32 l3off, int v6, __u32 cookie, __u16 mss)
{
	__u8 mac[ETH_ALEN];
	struct tcphdr *th = (void *)h->tcp;
	__u32 sum, seq = bpf_ntohl(th->seq);
	__u16 port;

	__builtin_memcpy(mac, h->l2, ETH_ALEN);
	__builtin_memcpy(h->l2, h->l2 + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(h->l2 + ETH_ALEN, mac, ETH_ALEN);

	port = th->source;
	th->source = th->dest;
	th->dest = port;
	th->seq = bpf_htonl(cookie);
	th->ack_seq = bpf_htonl(seq + 1);
	((__u8 *)th)[12] = (COOKIE_TCP_LEN / 4) << 4;
	((__u8 *)th)[13] = 0x12; /* SYN, ACK */
	th->window = bpf_htons(65535);
	th->check = 0;
	th->urg_ptr = 0;
	h->tcp[20] = 2; /* TCPOPT_MSS */
	h->tcp[21] = 4;
	h->tcp[22] = mss >> 8;
	h->tcp[23] = mss;

	/* The pseudo-header: addresses, protocol, TCP length. */
	sum = bpf_htons(IPPROTO_TCP) + bpf_htons(COOKIE_TCP_LEN);
	if (v6) {
		struct in6_addr a = h->ip6.saddr;

		h->ip6.saddr = h->ip6.daddr;
		h->ip6.daddr = a;
		h->ip6.payload_len = bpf_htons(COOKIE_TCP_LEN);
		h->ip6.hop_limit = 64;
		h->ip6.flow_lbl[0] = h->ip6.flow_lbl[1] = h->ip6.flow_lbl[2] = 0;
		h->ip6.priority = 0;
		sum = csum_words(sum, &h->ip6.saddr, 16);
	} else {
		__be32 a = h->ip4.saddr;

		h->ip4.saddr = h->ip4.daddr;
		h->ip4.daddr = a;
		h->ip4.tos = 0;
		h->ip4.tot_len = bpf_htons(sizeof(struct iphdr) + COOKIE_TCP_LEN);
		h->ip4.id = 0;
		h->ip4.frag_off = bpf_htons(0x4000); /* DF */
		h->ip4.ttl = 64;
		h->ip4.check = 0;
		h->ip4.check = csum_fold(csum_words(0, &h->ip4, 10));
		sum = csum_words(sum, &h->ip4.saddr, 4);
	}
	th->check = csum_fold(csum_words(sum, h->tcp, COOKIE_TCP_LEN / 2));
}

/* syn_cookie is the SYN-cookie step, under attack with FW_F_SYN_COOKIES,
 * for a TCP packet that is not a fragment. For a SYN (without ACK) it
 * builds the SYN-ACK, with a cookie for sequence number, in h, and returns
 * XDP_TX: syn_send then puts it in the packet's place. An ACK without
 * SYN, RST or FIN (the handshake's last, or the first data segment) whose
 * acknowledgement is a valid cookie completes a handshake the program (or
 * the stack, which uses the same secret) answered: XDP_PASS. Anything else returns -1, and
 * goes on to the next steps: a SYN of an IPv4 header with options or an
 * IPv6 one with extension headers, the once-a-minute SYN per port that
 * keeps the stack accepting cookies (syn_passed), and ACKs whose cookie
 * does not check, which are most often those of established connections
 * (the program keeps no connection table to tell them apart). */
static __always_inline int syn_cookie(struct xdp_md *ctx, struct pkt *p, __u64 now, struct cookie_hdrs *hp)
{
	struct cookie_hdrs h = {};
	struct tcphdr *th = (void *)h.tcp;
	__u32 l3off = ETH_HLEN, l4off, iplen, len, key;
	__u16 proto;
	__u8 flags;
	__s64 r;
	int v6 = p->family == 6;

	if (!fw_cookie_helpers)
		return -1;
	if (bpf_xdp_load_bytes(ctx, 0, h.l2, ETH_HLEN))
		return -1;
	__builtin_memcpy(&proto, h.l2 + 12, 2);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (bpf_xdp_load_bytes(ctx, ETH_HLEN, h.l2 + ETH_HLEN, 4))
			return -1;
		l3off = COOKIE_MAX_L3;
	}
	if (v6) {
		if (bpf_xdp_load_bytes(ctx, l3off, &h.ip6, sizeof(h.ip6)) || h.ip6.nexthdr != IPPROTO_TCP)
			return -1;
		iplen = sizeof(struct ipv6hdr);
	} else {
		if (bpf_xdp_load_bytes(ctx, l3off, &h.ip4, sizeof(h.ip4)) || h.ip4.ihl != 5)
			return -1;
		iplen = sizeof(struct iphdr);
	}
	l4off = l3off + iplen;
	if (bpf_xdp_load_bytes(ctx, l4off, h.tcp, sizeof(struct tcphdr)))
		return -1;
	flags = h.tcp[13];

	if ((flags & 0x17) == 0x10) { /* ACK without SYN, RST, FIN */
		r = v6 ? bpf_tcp_raw_check_syncookie_ipv6(&h.ip6, th) : bpf_tcp_raw_check_syncookie_ipv4(&h.ip4, th);
		return r == 0 ? XDP_PASS : -1;
	}
	if ((flags & 0x12) != 0x02) /* not a SYN without ACK */
		return -1;

	key = p->dport;
	__u64 *last = bpf_map_lookup_elem(&syn_passed, &key);
	if (last && now - *last >= SYN_REFRESH_NS) {
		*last = now;
		return -1;
	}

	len = th->doff * 4;
	if (len < sizeof(struct tcphdr))
		return -1;
	if (len > sizeof(struct tcphdr)) {
		__u32 opts = len - sizeof(struct tcphdr);

		if (opts > sizeof(h.tcp) - sizeof(struct tcphdr))
			return -1;
		if (bpf_xdp_load_bytes(ctx, l4off + sizeof(struct tcphdr), h.tcp + sizeof(struct tcphdr), opts))
			return -1;
	}
	r = v6 ? bpf_tcp_raw_gen_syncookie_ipv6(&h.ip6, th, len) : bpf_tcp_raw_gen_syncookie_ipv4(&h.ip4, th, len);
	if (r < 0)
		return -1;
	syn_reply(&h, l3off, v6, (__u32)r, r >> 32);
	*hp = h;
	return XDP_TX;
}

/* syn_send replaces the packet by the SYN-ACK syn_cookie built in h: it
 * returns XDP_TX, or XDP_ABORTED if the packet cannot take it. */
static __always_inline int syn_send(struct xdp_md *ctx, struct cookie_hdrs *h)
{
	__u16 proto;
	__u32 l3off = ETH_HLEN, l4off, len;
	int v6;

	__builtin_memcpy(&proto, h->l2 + 12, 2);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		__builtin_memcpy(&proto, h->l2 + 16, 2);
		l3off = COOKIE_MAX_L3;
	}
	v6 = proto == bpf_htons(ETH_P_IPV6);
	l4off = l3off + (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));

	/* The SYN-ACK's length, then its bytes. */
	len = l4off + COOKIE_TCP_LEN;
	if (bpf_xdp_adjust_tail(ctx, (int)len - (int)bpf_xdp_get_buff_len(ctx)))
		return XDP_ABORTED;
	if (l3off != ETH_HLEN) {
		if (bpf_xdp_store_bytes(ctx, 0, h->l2, COOKIE_MAX_L3))
			return XDP_ABORTED;
	} else if (bpf_xdp_store_bytes(ctx, 0, h->l2, ETH_HLEN)) {
		return XDP_ABORTED;
	}
	if (v6) {
		if (bpf_xdp_store_bytes(ctx, l3off, &h->ip6, sizeof(h->ip6)))
			return XDP_ABORTED;
	} else if (bpf_xdp_store_bytes(ctx, l3off, &h->ip4, sizeof(h->ip4))) {
		return XDP_ABORTED;
	}
	if (bpf_xdp_store_bytes(ctx, l4off, h->tcp, COOKIE_TCP_LEN))
		return XDP_ABORTED;
	return XDP_TX;
}

/* syn_passing records that a SYN to its port goes on to the stack (see
 * syn_passed). */
static __always_inline void syn_passing(struct pkt *p, __u64 now)
{
	__u32 key = p->dport;
	__u64 *last = bpf_map_lookup_elem(&syn_passed, &key);

	if (last)
		*last = now;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&config, &zero);
	struct pkt p = {};
	struct bucket *b;
	__u64 now, shift;
	__u32 rule, len;
	int st;

	if (!c)
		return XDP_PASS;
	now = 0;
	if (c->flags & FW_F_REPLAY) {
		struct replay_meta *m = (void *)(long)ctx->data_meta;

		if ((void *)(m + 1) <= (void *)(long)ctx->data)
			now = m->time;
	}
	if (!now)
		now = bpf_ktime_get_ns();

	st = parse(ctx, &p);
	if (st == PARSE_NOT_IP)
		return verdict(ctx, c, &p, RULE_NOT_IP, XDP_PASS, now);
	if (st == PARSE_MALFORMED)
		return verdict(ctx, c, &p, RULE_MALFORMED, c->flags & FW_F_DROP_MALFORMED ? XDP_DROP : XDP_PASS, now);
	if (p.frag && (c->flags & FW_F_DROP_FRAGMENTS))
		return verdict(ctx, c, &p, RULE_FRAGMENT, XDP_DROP, now);

	rule = match(&allow4, &allow6, &p);
	if (rule)
		return verdict(ctx, c, &p, rule, XDP_PASS, now);
	rule = match(&deny4, &deny6, &p);
	if (rule)
		return verdict(ctx, c, &p, rule, XDP_DROP, now);

	shift = under_attack(c, now);

	if ((c->flags & FW_F_SYN_COOKIES) && p.l4proto == IPPROTO_TCP && !p.frag) {
		if (shift) {
			struct cookie_hdrs h;

			st = syn_cookie(ctx, &p, now, &h);
			if (st == XDP_TX) {
				/* Counted as the SYN it answers. */
				verdict(ctx, c, &p, RULE_SYN_COOKIE, XDP_TX, now);
				return syn_send(ctx, &h);
			}
			if (st == XDP_PASS)
				return verdict(ctx, c, &p, RULE_SYN_COOKIE_ACK, XDP_PASS, now);
		} else if (p.syn) {
			syn_passing(&p, now);
		}
	}
	if (p.syn && c->syn.interval) {
		b = bucket(&p, BUCKET_SYN, c->prefix4, c->prefix6, now);
		if (b && !conform(&b->tat, now, c->syn.interval << shift, c->syn.tolerance >> shift))
			return verdict(ctx, c, &p, RULE_SYN_RATE, XDP_DROP, now);
	}
	if (p.l4proto == IPPROTO_UDP && p.frag <= 1) {
#pragma unroll
		for (int i = 0; i < 4; i++) {
			if (p.sport != amp_ports[i] || !c->amp[i].interval)
				continue;
			b = bucket(&p, BUCKET_AMP + i, c->prefix4, c->prefix6, now);
			if (b && !conform(&b->tat, now, c->amp[i].interval << shift, c->amp[i].tolerance >> shift))
				return verdict(ctx, c, &p, RULE_AMP_DNS + i, XDP_DROP, now);
			break;
		}
	}
	if (c->pps.interval || c->bps.interval) {
		b = bucket(&p, BUCKET_RATE, c->prefix4, c->prefix6, now);
		if (b) {
			len = ctx->data_end - ctx->data;
			__u64 tat = b->tat, tatb = b->tat_bytes;

			if (c->pps.interval && !conform(&tat, now, c->pps.interval << shift, c->pps.tolerance >> shift))
				return verdict(ctx, c, &p, RULE_RATE_PPS, XDP_DROP, now);
			if (c->bps.interval &&
			    !conform(&tatb, now, (((__u64)len * c->bps.interval) >> 16) << shift, c->bps.tolerance >> shift))
				return verdict(ctx, c, &p, RULE_RATE_BPS, XDP_DROP, now);
			b->tat = tat;
			b->tat_bytes = tatb;
		}
	}
	return verdict(ctx, c, &p, RULE_DEFAULT, XDP_PASS, now);
}

char _license[] SEC("license") = "GPL";
