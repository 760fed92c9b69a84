// SPDX-License-Identifier: GPL-2.0
//
// btfptr has programs that read kernel objects through BTF-typed pointers
// (PTR_TO_BTF_ID): the task bpf_get_current_task_btf returns, the kernel
// sockets of bpf_skc_to_*_sock, the pt_regs of bpf_task_pt_regs, and the
// struct bpf_array behind a map pointer. TestVerify_kernel compares every
// verdict with the running kernel's; TestBTFPointers checks waggle's
// messages. Programs named ok_* are safe; bad_* are refused, each for one
// reason.
//
// waggle's loader applies no CO-RE relocations, so fields are read at the
// offsets of the kernel this object was built against (Linux 6.18,
// x86-64: the OFF_* below, from its BTF). On another kernel the loads read
// other fields, which waggle and the kernel judge alike: both use the
// running kernel's BTF.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define OFF_TASK_STACK 32         // void *stack
#define OFF_TASK_MM 1136          // struct mm_struct *mm
#define OFF_TASK_PID 1264         // pid_t pid
#define OFF_TASK_TGID 1268        // pid_t tgid
#define OFF_TASK_REAL_PARENT 1280 // struct task_struct __rcu *real_parent
#define OFF_TASK_GROUP_LEADER 1328
#define OFF_TASK_COMM 1752 // char comm[16]
#define SIZE_TASK 3264
#define OFF_PT_REGS_IP 128
#define OFF_MAP_MAX_ENTRIES 76 // struct bpf_map, at the start of struct bpf_array
#define OFF_TCP_SOCK_SND_CWND 1444

struct task_struct;
struct pt_regs;
struct tcp_sock;

#define FIELD(p, off, type) (*(type *)((char *)(p) + (off)))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

// ok_output_comm sends the task's name straight from the task: a trusted
// kernel object is memory a helper may read.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_output_comm(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, (char *)t + OFF_TASK_COMM, 16);
	return 0;
}

// bad_output_beyond sends 32 bytes from the 16 of the task's name.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_output_beyond(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, (char *)t + OFF_TASK_COMM, 32);
	return 0;
}

// bad_read_into_task gives the task to a helper that writes its memory.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_read_into_task(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	bpf_probe_read_kernel((char *)t + OFF_TASK_COMM, 8, ctx);
	return 0;
}

// ok_task_pid returns the current task's pid, read through the trusted
// task pointer.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_task_pid(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return FIELD(t, OFF_TASK_PID, int) & 1;
}

// ok_parent_tgid follows task->real_parent (an RCU pointer in the
// kernel's list of trusted fields) and reads its tgid.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_parent_tgid(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *p = FIELD(t, OFF_TASK_REAL_PARENT, struct task_struct *);

	return FIELD(p, OFF_TASK_TGID, int) & 1;
}

// ok_pt_regs reads the instruction pointer of the parent's registers:
// bpf_task_pt_regs takes the RCU pointer as its task.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_pt_regs(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *p = FIELD(t, OFF_TASK_REAL_PARENT, struct task_struct *);
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(p);

	return FIELD(r, OFF_PT_REGS_IP, long) & 1;
}

// ok_grandparent follows real_parent twice: an RCU pointer's listed
// fields are RCU pointers too.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_grandparent(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *p = FIELD(t, OFF_TASK_REAL_PARENT, struct task_struct *);
	struct task_struct *g = FIELD(p, OFF_TASK_REAL_PARENT, struct task_struct *);

	return bpf_task_pt_regs(g) != 0;
}

// bad_sleepable_parent passes task->real_parent to bpf_task_pt_regs from
// a sleepable program: outside an RCU read section the field is
// untrusted.
SEC("uprobe.s")
int bad_sleepable_parent(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *p = FIELD(t, OFF_TASK_REAL_PARENT, struct task_struct *);

	return bpf_task_pt_regs(p) != 0;
}

// ok_sleepable_task passes the current task itself from a sleepable
// program: it stays trusted.
SEC("uprobe.s")
int ok_sleepable_task(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return bpf_task_pt_regs(t) != 0;
}

// ok_comm reads one byte of the task's name: inside an array member.
SEC("raw_tracepoint/sys_enter")
int ok_comm(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *g = FIELD(t, OFF_TASK_GROUP_LEADER, struct task_struct *);

	return FIELD(g, OFF_TASK_COMM + 3, char) & 1;
}

// ok_void_ptr reads through task->stack, a void *: read-only memory the
// kernel reads with probing loads (Linux 6.17 on; a scalar before).
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_void_ptr(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long *s = FIELD(t, OFF_TASK_STACK, long *);

	return s[3] & 1;
}

static long vma_cb(struct task_struct *task, void *vma, void *data)
{
	return FIELD(vma, 0, long) & 1;
}

// ok_find_vma reads the vm_area_struct bpf_find_vma gives its callback.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_find_vma(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long d = 0;

	bpf_find_vma(t, 0, vma_cb, &d, 0);
	return 0;
}

// bad_find_vma_write writes into the vm_area_struct.
static long vma_write_cb(struct task_struct *task, void *vma, void *data)
{
	FIELD(vma, 0, long) = 0;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_find_vma_write(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long d = 0;

	bpf_find_vma(t, 0, vma_write_cb, &d, 0);
	return 0;
}

// ok_map_ptr reads the array's max_entries through the map pointer.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_map_ptr(void *ctx)
{
	return FIELD(&arr, OFF_MAP_MAX_ENTRIES, __u32) == 4;
}

// ok_ptr_arith moves the task pointer to its pid before reading it: a
// constant offset, kept in the pointer.
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_ptr_arith(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	int *pid;

	asm volatile("%0 = %1; %0 += %2" : "=r"(pid) : "r"(t), "i"(OFF_TASK_PID));
	return *pid & 1;
}

// bad_arith_or_null moves a tcp_sock that may be NULL.
SEC("tc")
int bad_arith_or_null(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	long r;

	if (!sk)
		return TC_ACT_OK;
	asm volatile("r1 = %1; call %[skc]; r0 += 8; %0 = r0"
		     : "=r"(r)
		     : "r"(sk), [skc] "i"(BPF_FUNC_skc_to_tcp_sock)
		     : "r0", "r1", "r2", "r3", "r4", "r5");
	return r != 0;
}

// ok_trusted_not_null compares the trusted task with NULL: the kernel
// knows it is not, and does not look at the other side (which reads the
// stack out of bounds).
SEC("tracepoint/syscalls/sys_enter_getpid")
int ok_trusted_not_null(void *ctx)
{
	long r;

	asm volatile("call %[f]; if r0 != 0 goto 1f; r0 = *(u64 *)(r10 + 8); 1: %0 = 0"
		     : "=r"(r)
		     : [f] "i"(BPF_FUNC_get_current_task_btf)
		     : "r0", "r1", "r2", "r3", "r4", "r5");
	return r;
}

// bad_untrusted_null compares an untrusted pointer with NULL: both sides
// are looked at.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_untrusted_null(void *ctx)
{
	long r;

	asm volatile("call %[f]; r0 = *(u64 *)(r0 + %[parent]); if r0 != 0 goto 1f; r0 = *(u64 *)(r10 + 8); 1: %0 = 0"
		     : "=r"(r)
		     : [f] "i"(BPF_FUNC_get_current_task_btf), [parent] "i"(OFF_TASK_REAL_PARENT + 8)
		     : "r0", "r1", "r2", "r3", "r4", "r5");
	return r;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} by_pid SEC(".maps");

// bad_task_key looks the task's pid up in a map straight from the task:
// map keys are not read-only helper memory.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_task_key(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return bpf_map_lookup_elem(&by_pid, (char *)t + OFF_TASK_PID) != 0;
}

// bad_write writes into the task.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_write(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	FIELD(t, OFF_TASK_PID, int) = 1;
	return 0;
}

// bad_beyond reads past the end of struct task_struct.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_beyond(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return FIELD(t, SIZE_TASK, int) & 1;
}

// bad_var_off reads the task at an offset only known at run time.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_var_off(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 i = bpf_get_prandom_u32() & 8;

	return FIELD(t, OFF_TASK_PID + i, int) & 1;
}

// bad_ptr_half reads half of the real_parent pointer.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_ptr_half(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return FIELD(t, OFF_TASK_REAL_PARENT + 4, int) & 1;
}

// bad_member_end reads 8 bytes across the end of comm.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_member_end(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return FIELD(t, OFF_TASK_COMM + 12, long) & 1;
}

// bad_wrong_type gives bpf_task_pt_regs a pt_regs, not a task.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_wrong_type(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	void *regs = (void *)bpf_task_pt_regs(t);

	return bpf_task_pt_regs(regs) != 0;
}

// bad_untrusted_arg gives bpf_task_pt_regs task->mm: a field the kernel
// does not list as trusted gives an untrusted pointer, which helpers
// do not take.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_untrusted_arg(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	void *mm = FIELD(t, OFF_TASK_MM, void *);

	return bpf_task_pt_regs(mm) != 0;
}

// bad_map_ptr_write writes into the map's struct bpf_array.
SEC("tracepoint/syscalls/sys_enter_getpid")
int bad_map_ptr_write(void *ctx)
{
	FIELD(&arr, OFF_MAP_MAX_ENTRIES, __u32) = 1;
	return 0;
}

// ok_skb_tcp_sock casts the socket of a packet to a tcp_sock and reads
// its congestion window after the NULL check.
SEC("tc")
int ok_skb_tcp_sock(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct tcp_sock *tp;

	if (!sk)
		return TC_ACT_OK;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return TC_ACT_OK;
	return FIELD(tp, OFF_TCP_SOCK_SND_CWND, __u32) > 10 ? TC_ACT_SHOT : TC_ACT_OK;
}

// ok_tcp6_of_tcp casts a kernel tcp_sock again: a tcp_sock starts with a
// sock_common, which bpf_skc_to_tcp6_sock takes.
SEC("tc")
int ok_tcp6_of_tcp(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct tcp_sock *tp;

	if (!sk)
		return TC_ACT_OK;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return TC_ACT_OK;
	return bpf_skc_to_tcp6_sock(tp) ? TC_ACT_SHOT : TC_ACT_OK;
}

// bad_unchecked reads the tcp_sock without testing it for NULL.
SEC("tc")
int bad_unchecked(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct tcp_sock *tp;

	if (!sk)
		return TC_ACT_OK;
	tp = bpf_skc_to_tcp_sock(sk);
	return FIELD(tp, OFF_TCP_SOCK_SND_CWND, __u32) > 10 ? TC_ACT_SHOT : TC_ACT_OK;
}

// ok_lookup_tcp_sock looks a socket up, casts it and releases it.
SEC("xdp")
int ok_lookup_tcp_sock(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	int ret = XDP_PASS;

	sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return XDP_PASS;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp && FIELD(tp, OFF_TCP_SOCK_SND_CWND, __u32) > 10)
		ret = XDP_DROP;
	bpf_sk_release(sk);
	return ret;
}

// bad_release_cast releases the cast pointer twice: the cast holds the
// reference of the socket it came from.
SEC("xdp")
int bad_release_cast(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct tcp_sock *tp;

	sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return XDP_PASS;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		bpf_sk_release(tp);
	bpf_sk_release(sk);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
