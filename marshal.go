package waggle

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
)

// marshal turns a key or value into exactly size bytes, as cilium/ebpf's
// Map methods accept them: a []byte of the right length, an
// encoding.BinaryMarshaler, or anything encoding/binary can write in the
// host's byte order (integers, fixed-size arrays and structs of them, and
// pointers to those).
func marshal(v any, size int) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("marshal: nil value, want %d bytes", size)
	case []byte:
		b = x
	case encoding.BinaryMarshaler:
		var err error
		if b, err = x.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
	default:
		n := binary.Size(v)
		if n < 0 {
			return nil, fmt.Errorf("marshal %T: not a fixed-size type (want []byte, a BinaryMarshaler, or a fixed-size integer, array or struct)", v)
		}
		var buf bytes.Buffer
		buf.Grow(n)
		if err := binary.Write(&buf, binary.NativeEndian, v); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
		b = buf.Bytes()
	}
	if len(b) != size {
		return nil, fmt.Errorf("marshal %T: %d bytes, the map wants %d", v, len(b), size)
	}
	return b, nil
}

// unmarshal stores b into out: a []byte of the right length (copied into),
// an encoding.BinaryUnmarshaler, or a pointer to anything encoding/binary
// can read.
func unmarshal(b []byte, out any) error {
	switch x := out.(type) {
	case nil:
		return fmt.Errorf("unmarshal: nil destination")
	case []byte:
		if len(x) != len(b) {
			return fmt.Errorf("unmarshal into []byte: have %d bytes, want %d", len(x), len(b))
		}
		copy(x, b)
		return nil
	case *[]byte:
		*x = append((*x)[:0], b...)
		return nil
	case encoding.BinaryUnmarshaler:
		return x.UnmarshalBinary(b)
	}
	if reflect.TypeOf(out).Kind() != reflect.Pointer {
		return fmt.Errorf("unmarshal into %T: need a pointer, a []byte or a BinaryUnmarshaler", out)
	}
	if n := binary.Size(out); n != len(b) {
		if n < 0 {
			return fmt.Errorf("unmarshal into %T: not a fixed-size type", out)
		}
		return fmt.Errorf("unmarshal into %T: it holds %d bytes, the map gives %d", out, n, len(b))
	}
	return binary.Read(bytes.NewReader(b), binary.NativeEndian, out)
}

// unmarshalPerCPU stores the per-CPU values of b (each padded to stride
// bytes) into out, a pointer to a slice of a fixed-size type or a
// [][]byte, as cilium/ebpf does for per-CPU maps.
func unmarshalPerCPU(b []byte, stride, valueSize int, out any) error {
	cpus := len(b) / stride
	if bs, ok := out.(*[][]byte); ok {
		*bs = (*bs)[:0]
		for c := 0; c < cpus; c++ {
			*bs = append(*bs, append([]byte(nil), b[c*stride:c*stride+valueSize]...))
		}
		return nil
	}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Slice {
		return fmt.Errorf("per-CPU value into %T: need a pointer to a slice", out)
	}
	s := reflect.MakeSlice(rv.Elem().Type(), cpus, cpus)
	for c := 0; c < cpus; c++ {
		if err := unmarshal(b[c*stride:c*stride+valueSize], s.Index(c).Addr().Interface()); err != nil {
			return fmt.Errorf("CPU %d: %w", c, err)
		}
	}
	rv.Elem().Set(s)
	return nil
}

// marshalPerCPU lays out a slice of per-CPU values (one per CPU, of a
// fixed-size type or []byte) with each padded to stride bytes.
func marshalPerCPU(v any, cpus, stride, valueSize int) ([]byte, error) {
	if b, ok := v.([]byte); ok && len(b) == cpus*stride {
		return b, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("per-CPU value %T: need a slice with one value per CPU (%d)", v, cpus)
	}
	if rv.Len() != cpus {
		return nil, fmt.Errorf("per-CPU value: %d values, the map has %d CPUs", rv.Len(), cpus)
	}
	out := make([]byte, cpus*stride)
	for c := 0; c < cpus; c++ {
		b, err := marshal(rv.Index(c).Interface(), valueSize)
		if err != nil {
			return nil, fmt.Errorf("CPU %d: %w", c, err)
		}
		copy(out[c*stride:], b)
	}
	return out, nil
}

// marshalAny is marshal without a size to match.
func marshalAny(v any) ([]byte, error) {
	n := binary.Size(v)
	if n < 0 {
		return nil, fmt.Errorf("%T is not a fixed-size type", v)
	}
	return marshal(v, n)
}

// binarySize is binary.Size, for pointers to fixed-size values.
func binarySize(v any) int { return binary.Size(v) }
