package helpers

// Helper ids (Linux numbering, enum bpf_func_id in include/uapi/linux/bpf.h).
const (
	IDKtimeGetNs     int32 = 5   // bpf_ktime_get_ns
	IDKtimeGetBootNs int32 = 125 // bpf_ktime_get_boot_ns
)

// KtimeGetNs is bpf_ktime_get_ns: nanoseconds of CLOCK_MONOTONIC, which does
// not advance while the system is suspended.
func KtimeGetNs(Env, *[5]uint64) (uint64, error) { return monotonicNs(), nil }

// KtimeGetBootNs is bpf_ktime_get_boot_ns: nanoseconds of CLOCK_BOOTTIME,
// which includes time suspended.
func KtimeGetBootNs(Env, *[5]uint64) (uint64, error) { return boottimeNs(), nil }

// Time returns the helpers that read clocks. They take no pointers, so they
// are safe in every engine and mode.
func Time() Table {
	return Table{
		IDKtimeGetNs:     KtimeGetNs,
		IDKtimeGetBootNs: KtimeGetBootNs,
	}
}
