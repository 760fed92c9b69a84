// SPDX-License-Identifier: GPL-2.0
//
// target is the process the uprobe and cgroup tests watch (built by the
// test with the host's C compiler, not for BPF):
//
//	target calls N   calls waggle_target_hit N times
//	target udp       opens a UDP socket and sends one datagram to 127.0.0.1:9
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) int waggle_target_hit(int i)
{
	__asm__ volatile("" ::: "memory");
	return i * 2 + 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "calls") == 0) {
		int n = atoi(argv[2]), sum = 0;
		for (int i = 0; i < n; i++)
			sum += waggle_target_hit(i);
		return sum == n * n ? 0 : 1;
	}
	if (argc == 2 && strcmp(argv[1], "udp") == 0) {
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0)
			return 2;
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (sendto(fd, "waggle", 6, 0, (struct sockaddr *)&to, sizeof(to)) != 6)
			return 3;
		return close(fd);
	}
	return 64;
}
