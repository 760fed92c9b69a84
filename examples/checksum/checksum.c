//go:build ignore

// SPDX-License-Identifier: Apache-2.0
//
// checksum computes the Internet checksum (RFC 1071) of the memory it is
// given: r1 points to the bytes, r2 holds their length, as in the eBPF
// conformance suite's calling convention. Run it with
//
//	waggle run examples/checksum/checksum.o --mem examples/checksum/ipv4-header.bin
//
// ipv4-header.bin is an IPv4 header with its checksum field zeroed; the
// result, 0xb861, is the checksum that belongs there. Over a header whose
// checksum is filled in, the result is 0.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define MAX_LEN 1500

__attribute__((section("waggle/mem"), used))
__u64 checksum(const __u8 *data, __u64 len)
{
	__u64 sum = 0;
	__u64 i;

	if (len > MAX_LEN)
		len = MAX_LEN;
	for (i = 0; i + 1 < len; i += 2)
		sum += (__u16)(data[i] << 8 | data[i + 1]);
	if (i < len)
		sum += (__u16)(data[i] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

char _license[] __attribute__((section("license"), used)) = "Apache-2.0";
