//go:build ignore

// Global data in every section clang and libbpf know, and __kconfig externs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 counter = 5;                              // .data
const volatile __u32 limit = 100;               // .rodata
__u32 seen;                                     // .bss
__u32 table[4] = {1, 2, 3, 4};                  // .data
static __u32 hidden = 9;                        // .data, static (section symbol)
__u32 custom SEC(".data.custom") = 42;          // .data.custom
const volatile __u16 ports[2] SEC(".rodata.cfg") = {80, 443};
char name[8] SEC(".data.names") = "waggle";

extern __u32 LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;

static __attribute__((noinline)) int fill(__u32 *p, __u32 v)
{
	*p = v;
	return 0;
}

SEC("socket")
int count(struct __sk_buff *skb)
{
	counter++;
	seen = skb->len;
	hidden += 1;
	if (skb->len > limit)
		return 0;
	fill(&table[skb->len & 3], custom);
	bpf_printk("len %d port %d", skb->len, ports[skb->len & 1]);
	return table[1] + name[0];
}

SEC("tc")
int version(struct __sk_buff *skb)
{
	if (LINUX_KERNEL_VERSION < 0x050000)
		return 1;
	custom = CONFIG_HZ;
	return seen + hidden;
}

char LICENSE[] SEC("license") = "GPL";
