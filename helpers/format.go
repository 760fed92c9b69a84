package helpers

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"

	"github.com/waggle-bpf/waggle/maps"
)

// Limits of the printf-like helpers (include/linux/bpf.h).
const (
	MaxPrintfArgs  = 12   // MAX_BPRINTF_VARARGS: bpf_snprintf's data array
	MaxTracePrintk = 3    // MAX_TRACE_PRINTK_VARARGS
	MaxPrintfBuf   = 1024 // MAX_BPRINTF_BUF: bpf_trace_printk's output
	maxStringArg   = 1024 // how much of a %s argument is read
)

// bprintf formats fmt with args as the kernel's bpf_bprintf_prepare and
// bstr_printf do (kernel/bpf/helpers.c), and returns the whole text (the
// caller truncates). It accepts what the kernel accepts: %d %i %u %x %X with
// the l and ll modifiers and the [0 +-][width] prefix, %c, %s, %%, and %p
// with its k, u, x, K, s, S, B, i4, I4, i6, I6 forms; anything else is
// -EINVAL, as are non-printable ASCII bytes and more conversions than args.
// Strings (%s, %pks, %pus) and addresses (%pI4 ...) are read through
// env.Memory; memory the run does not own reads as empty, as the kernel's
// nofault copies do.
//
// No conversion prints an address of the process: %p and %pK print what
// Linux prints with kptr_restrict 0, a 32-bit keyed hash of the pointer
// (the key is random per process, as the kernel's is per boot), zero-padded
// to 16 digits; %px, %ps, %pS and %pB, which print the raw address (or a
// kernel symbol) in Linux, print a 64-bit keyed hash in the same shape.
// NULL and error pointers (-4095 to -1) print raw, as in Linux.
func bprintf(env Env, format []byte, args []uint64) (string, error) {
	end := strings.IndexByte(string(format), 0)
	if end < 0 {
		return "", maps.EINVAL
	}
	f := string(format[:end])
	var out strings.Builder
	n := 0 // conversions used
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c < 0x80 && !isPrint(c) && !isSpace(c) {
			return "", maps.EINVAL
		}
		if c != '%' {
			out.WriteByte(c)
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			out.WriteByte('%')
			i++
			continue
		}
		if n >= len(args) {
			return "", maps.EINVAL
		}
		arg := args[n]
		n++
		i++
		if i >= len(f) || f[i] >= 0x80 {
			return "", maps.EINVAL
		}
		// [0 +-][width]
		flagStart := i
		for i < len(f) && (f[i] == '0' || f[i] == '+' || f[i] == '-' || f[i] == ' ') {
			i++
		}
		if i < len(f) && f[i] >= '1' && f[i] <= '9' {
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
		}
		spec := f[flagStart:i]
		next := func(k int) byte {
			if i+k < len(f) {
				return f[i+k]
			}
			return 0
		}
		if i >= len(f) {
			return "", maps.EINVAL
		}
		switch f[i] {
		case 'p':
			switch n1 := next(1); {
			case n1 == 0 || isSpace(n1) || isPunct(n1):
				out.WriteString(pointerText(spec, hashPointer(arg, false)))
			case (n1 == 'k' || n1 == 'u') && next(2) == 's':
				if !endOfString(next(3)) {
					return "", maps.EINVAL
				}
				out.WriteString(pad(spec, readString(env, arg)))
				i += 2
			case n1 == 'K':
				out.WriteString(pointerText(spec, hashPointer(arg, false)))
				i++
			case n1 == 'x':
				out.WriteString(pointerText(spec, hashPointer(arg, true)))
				i++
			case n1 == 's' || n1 == 'S' || n1 == 'B':
				// A kernel symbol, or "0x%lx" of an address without one.
				out.WriteString(pad(spec, "0x"+strconv.FormatUint(hashPointer(arg, true), 16)))
				i++
			case (n1 == 'i' || n1 == 'I') && (next(2) == '4' || next(2) == '6'):
				out.WriteString(pad(spec, formatIP(env, arg, n1, next(2))))
				i += 2
			default:
				return "", maps.EINVAL
			}
		case 's':
			if !endOfString(next(1)) {
				return "", maps.EINVAL
			}
			out.WriteString(pad(spec, readString(env, arg)))
		case 'c':
			out.WriteString(pad(spec, string([]byte{byte(arg)})))
		default:
			size := 4
			if f[i] == 'l' {
				size = 8
				i++
			}
			if i < len(f) && f[i] == 'l' {
				i++
			}
			if i >= len(f) {
				return "", maps.EINVAL
			}
			verb := f[i]
			if size == 4 {
				arg = uint64(uint32(arg))
			}
			var text string
			switch verb {
			case 'd', 'i':
				if size == 4 {
					text = strconv.FormatInt(int64(int32(arg)), 10)
				} else {
					text = strconv.FormatInt(int64(arg), 10)
				}
			case 'u':
				text = strconv.FormatUint(arg, 10)
			case 'x':
				text = strconv.FormatUint(arg, 16)
			case 'X':
				text = strings.ToUpper(strconv.FormatUint(arg, 16))
			default:
				return "", maps.EINVAL
			}
			out.WriteString(padNumber(spec, text))
		}
	}
	return out.String(), nil
}

// pointerSeed keys the pointer hash of %p; it is drawn once per process
// and never changes, as the kernel's ptr_key is drawn once per boot.
var pointerSeed = maphash.MakeSeed()

// hashPointer is lib/vsprintf.c's ptr_to_id: NULL and error pointers as
// they are, anything else hashed with a per-process key, to 32 bits as
// Linux does (wide: to 64 bits, for the conversions that print addresses
// raw in Linux).
func hashPointer(v uint64, wide bool) uint64 {
	if v == 0 || v > ^uint64(0)-4095 {
		return v
	}
	h := maphash.Comparable(pointerSeed, v)
	if wide {
		return h | 1<<63 // 16 significant digits, as a kernel address has
	}
	return uint64(uint32(h))
}

// pointerText is lib/vsprintf.c's pointer_string: hex, zero-padded to 16
// digits without a width; with one, padded as a number (spaces, or zeros
// with the 0 flag), the sign flags ignored.
func pointerText(spec string, v uint64) string {
	digits := strconv.FormatUint(v, 16)
	if strings.Trim(spec, "0+- ") == "" {
		return fmt.Sprintf("%016s", digits)
	}
	return padNumber(strings.NewReplacer("+", "", " ", "").Replace(spec), digits)
}

func isPrint(c byte) bool { return c >= 0x20 && c < 0x7f }
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
func isPunct(c byte) bool {
	return isPrint(c) && c != ' ' && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')
}

// endOfString reports whether c may follow %s: the kernel refuses %sX.
func endOfString(c byte) bool { return c == 0 || isSpace(c) || isPunct(c) }

// readString reads a NUL-terminated string the program points to, up to
// maxStringArg bytes; memory the run does not own reads as "".
func readString(env Env, addr uint64) string {
	var b []byte
	for n := uint64(0); n < maxStringArg; n++ {
		c, err := env.Memory(addr+n, 1, false)
		if err != nil || c[0] == 0 {
			break
		}
		b = append(b, c[0])
	}
	return string(b)
}

// formatIP prints the address at addr as %pI4 (1.2.3.4), %pi4
// (001.002.003.004), %pI6 (full, colon-separated groups) or %pi6 (32 hex
// digits), as lib/vsprintf.c does; unreadable memory prints as zeros.
func formatIP(env Env, addr uint64, kind, family byte) string {
	n := uint64(4)
	if family == '6' {
		n = 16
	}
	b, err := env.Memory(addr, n, false)
	if err != nil {
		b = make([]byte, n)
	}
	if family == '4' {
		if kind == 'i' {
			return fmt.Sprintf("%03d.%03d.%03d.%03d", b[0], b[1], b[2], b[3])
		}
		return netip.AddrFrom4([4]byte(b)).String()
	}
	if kind == 'i' {
		return fmt.Sprintf("%x", b)
	}
	var groups []string
	for k := 0; k < 16; k += 2 {
		groups = append(groups, fmt.Sprintf("%04x", uint16(b[k])<<8|uint16(b[k+1])))
	}
	return strings.Join(groups, ":")
}

// pad applies a "[-][width]" spec to a string conversion.
func pad(spec, s string) string {
	left := strings.Contains(spec, "-")
	w, _ := strconv.Atoi(strings.TrimLeft(spec, "0+- "))
	for len(s) < w {
		if left {
			s += " "
		} else {
			s = " " + s
		}
	}
	return s
}

// padNumber applies "[0 +-][width]" to a number as C's printf does.
func padNumber(spec, s string) string {
	left := strings.Contains(spec, "-")
	zero := strings.HasPrefix(strings.TrimLeft(spec, "+- "), "0") && !left
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	} else if strings.Contains(spec, "+") {
		sign = "+"
	} else if strings.Contains(spec, " ") {
		sign = " "
	}
	w, _ := strconv.Atoi(strings.TrimLeft(spec, "0+- "))
	for len(sign)+len(s) < w {
		switch {
		case left:
			s += " "
		case zero:
			s = "0" + s
		default:
			sign = " " + sign
		}
	}
	return sign + s
}
