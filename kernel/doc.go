// Package kernel owns waggle's Linux backend: it loads programs into the
// running kernel and runs them there with BPF_PROG_TEST_RUN, so the kernel
// can serve as the oracle the user-space engines are compared against.
//
// # Why program loading is raw here
//
// Maps, ELF parsing, attaching and pinning go through github.com/cilium/ebpf,
// which does them well. Program loading does not: cilium/ebpf v0.22.0's
// instruction encoder zeroes the offset field of most ALU instructions when
// it marshals a program, so sdiv/smod (offset 1) silently become div/mod,
// movsx (offset 8, 16 or 32) becomes mov, and an instruction with a
// non-zero reserved offset is "repaired" instead of rejected. A differential
// test that loads through it compares waggle with a different program than
// the one waggle ran. Load therefore issues BPF_PROG_LOAD itself (SYS_BPF with
// the bpf_attr layout of include/uapi/linux/bpf.h), passing the exact bytes
// isa.Encode produces, and Program.Run issues BPF_PROG_TEST_RUN the same way.
//
// NewCollection is the exception: it loads a whole object (maps, prog
// arrays, programs) with cilium/ebpf's NewCollection, for `waggle run
// --engine kernel`. Instructions cilium/ebpf read from an ELF file itself
// survive the round trip (it decodes sdiv, smod and movsx's offsets into
// opcodes of its own and encodes them back); instructions built as
// isa.Instructions do not, and go through Load.
//
// # Loading objects
//
// LoadCollection loads an object file the way libbpf or tc would: waggle's
// loader reads and normalises it (so objects cilium/ebpf alone refuses
// load too), cilium/ebpf creates its maps and loads its programs from the
// normalised CollectionSpec (resolving CO-RE relocations against the
// kernel's BTF), then the object's prog arrays and maps of maps are filled
// and, with CollectionOptions.PinPath, maps and programs are pinned on a
// bpffs under PinPath/maps and PinPath/progs. A refused program is a
// *ProgramError with the verifier's log, the instruction the log stops at,
// its C source line and waggle's verifier's verdict on the same program.
//
// # Attaching
//
// AttachFile loads an object as LoadCollection does and attaches one program to
// a Hook (XDP, TCX, tracepoints, raw tracepoints, uprobes, perf_event,
// cgroups, socket filters, kprobes, fentry/fexit, LSM), read from its
// section name (ParseSection) or given; HookSupported probes the hook
// first and names the probe a missing hook failed. Attached.Pin keeps the
// program attached past the process, with its maps, under a bpffs
// directory that Detach removes. CountVerdicts makes programs count their
// return values, for live runs that report verdicts.
//
// # Privileges
//
// Loading XDP and tc programs needs CAP_BPF and CAP_NET_ADMIN (in practice:
// root). Supported reports whether this process can load and test-run a
// program at all; tests call it first and skip, never fail, when it returns
// an error.
//
// Everything except the OS-independent types is built only on Linux.
package kernel
