// SPDX-License-Identifier: Apache-2.0
// An object shaped like the conformance runner's --elf input: a global
// function "main" in .text. It returns the sum of its input bytes.
typedef unsigned long long __u64;

__u64 main(const unsigned char *mem, __u64 len)
{
	__u64 sum = 0;

#pragma clang loop unroll(disable)
	for (__u64 i = 0; i < len && i < 64; i++)
		sum += mem[i];
	return sum;
}
