//go:build ignore

// A cgroup_sock_addr program in a section libbpf does not know, as Cilium
// v1.10 named its socket programs ("connect4"): its loader (bpftool prog
// load OBJ PATH type cgroup/connect4) gave the program type and the
// expected attach type, on which context access depends (user_ip4 is
// writable only by programs attached to IPv4 connect or sendmsg).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	if (ctx->user_port == bpf_htons(80))
		ctx->user_ip4 = bpf_htonl(0x0a000001);
	return 1;
}

char _license[] SEC("license") = "GPL";
