package inspect

import (
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// FuzzParseKeyValue: a KEY and a VALUE from the command line parse or give
// an error, never panic, and what parses has the map's sizes.
func FuzzParseKeyValue(f *testing.F) {
	for _, s := range [][2]string{
		{"20 00 00 00 0a 00 00 01", "5"},
		{`{"prefixlen": 24, "addr": [1, 2, 3, 4]}`, `["0x01","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]`},
		{`{"addr": "x"}`, `{"values": [{"cpu": 0, "value": 1}]}`},
		{"0x", "[[[[[[[[[["},
	} {
		f.Add(s[0], s[1])
	}
	m := lpmMap()
	f.Fuzz(func(t *testing.T, key, value string) {
		if k, err := ParseKey(m, key); err == nil && len(k) != int(m.KeySize) {
			t.Fatalf("key %q: %d bytes", key, len(k))
		}
		if v, err := ParseValue(m, value, nil); err == nil && len(v) != m.ValueBytes() {
			t.Fatalf("value %q: %d bytes", value, len(v))
		}
	})
}

// FuzzDisasmJited: any bytes disassemble, every byte covered once.
func FuzzDisasmJited(f *testing.F) {
	f.Add([]byte{0x55, 0x48, 0x89, 0xe5, 0xe8, 0xf7, 0x0f, 0x00, 0x00, 0xc9, 0xc3}, uint8(1))
	f.Add([]byte{0x0f, 0x0b, 0xff}, uint8(2))
	f.Fuzz(func(t *testing.T, code []byte, split uint8) {
		in := JitedInput{Code: code, Addrs: []uint64{0xffffffffc0000000}, Symbol: func(uint64) string { return "" }}
		if s := int(split); s <= len(code) {
			in.FuncLens = []uint32{uint32(s), uint32(len(code) - s)}
		}
		funcs, err := DisasmJited(in)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, fn := range funcs {
			for _, ins := range fn.Insns {
				n += (len(ins.Bytes) + 1) / 3
			}
		}
		if n != len(code) {
			t.Fatalf("%d of %d bytes disassembled", n, len(code))
		}
	})
}

// FuzzFormatXlated: any decodable instructions format.
func FuzzFormatXlated(f *testing.F) {
	f.Add([]byte{0x18, 0x11, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x85, 0x10, 3, 0, 1, 0, 0, 0})
	f.Add([]byte{0x18, 0x21, 0, 0, 42, 0, 0, 0})
	f.Fuzz(func(t *testing.T, code []byte) {
		insns, err := isa.Decode(code[:len(code)&^7])
		if err != nil {
			return
		}
		out := FormatXlated(insns, Annotations{MapName: func(uint32) string { return "m" }})
		if len(insns) > 0 && len(out) == 0 {
			t.Fatal("nothing formatted")
		}
	})
}
