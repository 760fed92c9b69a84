package helpers

import (
	"encoding/binary"
	"errors"
	"testing"
)

// fakeEnv is an Env of two memory areas, at addresses 0x1000 and 0x2000.
type fakeEnv struct {
	st   State
	mems map[uint64][]byte
}

func (e *fakeEnv) Memory(addr, n uint64, write bool) ([]byte, error) {
	for base, b := range e.mems {
		if addr >= base && addr-base+n <= uint64(len(b)) {
			return b[addr-base : addr-base+n], nil
		}
	}
	return nil, errors.New("bad address")
}
func (e *fakeEnv) State() *State { return &e.st }
func (e *fakeEnv) Call(uint64, [5]uint64) (uint64, error) {
	return 0, errors.New("no callbacks")
}
func (e *fakeEnv) Scratch(uint64) (uint64, []byte, error) { return 0, nil, errors.New("no scratch") }

// synV4 and synV6 build an IP header and a TCP SYN with seq and the
// given options.
func synV4(seq uint32, opts ...byte) (iph, th []byte) {
	iph = make([]byte, 20)
	iph[0] = 0x45
	copy(iph[12:], []byte{192, 0, 2, 1})
	copy(iph[16:], []byte{198, 51, 100, 7})
	return iph, tcpSyn(seq, opts)
}

func synV6(seq uint32, opts ...byte) (iph, th []byte) {
	iph = make([]byte, 40)
	iph[0] = 0x60
	copy(iph[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	copy(iph[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	return iph, tcpSyn(seq, opts)
}

func tcpSyn(seq uint32, opts []byte) []byte {
	th := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(th[0:], 40000)
	binary.BigEndian.PutUint16(th[2:], 80)
	binary.BigEndian.PutUint32(th[4:], seq)
	th[12] = byte(len(th)/4) << 4
	th[13] = 0x02 // SYN
	copy(th[20:], opts)
	return th
}

// ackFor turns a SYN's TCP header into the ACK that answers cookie.
func ackFor(th []byte, cookie uint32) []byte {
	ack := append([]byte(nil), th[:20]...)
	seq := binary.BigEndian.Uint32(th[4:])
	binary.BigEndian.PutUint32(ack[4:], seq+1)
	binary.BigEndian.PutUint32(ack[8:], cookie+1)
	ack[12] = 5 << 4
	ack[13] = 0x10 // ACK
	return ack
}

func mssOpt(m uint16) []byte { return []byte{2, 4, byte(m >> 8), byte(m)} }

func TestSiphash(t *testing.T) {
	// The reference vectors of the SipHash paper (key 00..0f, message
	// 00..len-1).
	k := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	msg := make([]byte, 16)
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{{0, 0x726fdb47dd0e0e31}, {1, 0x74f839c593dc67fd}, {7, 0xab0200f58b01d137}, {8, 0x93f5f5799a932462}, {15, 0xa129ca6149be45e5}} {
		if got := siphash(k, msg[:tc.n]); got != tc.want {
			t.Errorf("siphash(%d bytes) = %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

func TestSyncookie_roundTrip(t *testing.T) {
	s := NewSyncookieSecret(1)
	for _, tc := range []struct {
		name    string
		v6      bool
		iph, th []byte
	}{
		{"ipv4", false, nil, nil},
		{"ipv6", true, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iph, th := synV4(0xfffffff0, mssOpt(1460)...)
			if tc.v6 {
				iph, th = synV6(0xfffffff0, mssOpt(1460)...)
			}
			f := flowOf(tc.v6, iph, th)
			const count = 0x12345
			cookie, mss := s.gen(&f, 0xfffffff0, 1460, count)
			want := map[bool]uint16{false: 1460, true: 1440}[tc.v6]
			if mss != want {
				t.Fatalf("mss %d, want %d", mss, want)
			}
			for _, c := range []struct {
				name   string
				count  uint32
				cookie uint32
				seq    uint32
				ok     bool
			}{
				{"same minute", count, cookie, 0xfffffff0, true},
				{"next minute", count + 1, cookie, 0xfffffff0, true},
				{"two minutes later", count + 2, cookie, 0xfffffff0, false},
				{"a minute earlier", count - 1, cookie, 0xfffffff0, false},
				// The low bits carry the MSS index: a cookie off by
				// less than 4 may check, with another MSS, as in Linux.
				{"wrong cookie", count, cookie + 0x100, 0xfffffff0, false},
				{"wrong seq", count, cookie, 0xfffffff0 - 0x100, false},
				{"cookie of another minute", count, cookie + 1<<24, 0xfffffff0, false},
			} {
				got := s.check(&f, c.cookie, c.seq, c.count)
				if ok := got != 0; ok != c.ok || ok && got != want {
					t.Errorf("%s: check = %d, want valid %v (mss %d)", c.name, got, c.ok, want)
				}
			}
			other := f
			other.sport[1]++
			if s.check(&other, cookie, 0xfffffff0, count) != 0 {
				t.Error("another source port checks")
			}
			other = f
			other.saddr[3]++
			if s.check(&other, cookie, 0xfffffff0, count) != 0 {
				t.Error("another source address checks")
			}
			if NewSyncookieSecret(2).check(&f, cookie, 0xfffffff0, count) != 0 {
				t.Error("another secret checks")
			}
		})
	}
}

func TestSyncookie_msstab(t *testing.T) {
	s := NewSyncookieSecret(1)
	iph, th := synV4(1)
	f4 := flowOf(false, iph, th)
	iph6, th6 := synV6(1)
	f6 := flowOf(true, iph6, th6)
	for _, tc := range []struct {
		v6       bool
		mss, got uint16
	}{
		{false, 1460, 1460}, {false, 9000, 1460}, {false, 1459, 1440}, {false, 1440, 1440},
		{false, 1300, 1300}, {false, 1299, 536}, {false, 536, 536}, {false, 100, 536},
		{true, 9000, 8940}, {true, 8939, 1440}, {true, 1420, 1420}, {true, 1419, 1220}, {true, 1000, 1220},
	} {
		f := &f4
		if tc.v6 {
			f = &f6
		}
		cookie, mss := s.gen(f, 1, tc.mss, 7)
		if mss != tc.got {
			t.Errorf("v6 %v mss %d: encodes %d, want %d", tc.v6, tc.mss, mss, tc.got)
		}
		if back := s.check(f, cookie, 1, 7); back != tc.got {
			t.Errorf("v6 %v mss %d: check gives %d, want %d", tc.v6, tc.mss, back, tc.got)
		}
	}
}

func TestParseMSSOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []byte
		want uint16
	}{
		{"none", nil, 0},
		{"mss", mssOpt(1400), 1400},
		{"nop nop mss", append([]byte{1, 1}, append(mssOpt(1300), 0, 0)...), 1300},
		{"eol first", append([]byte{0, 0, 0, 0}, mssOpt(1300)...), 0},
		{"zero mss", mssOpt(0), 0},
		{"wscale then mss", append([]byte{3, 3, 7, 1}, mssOpt(1200)...), 1200},
		{"silly size", append([]byte{8, 1, 0, 0}, mssOpt(1200)...), 0},
		{"partial option", []byte{1, 1, 2, 8}, 0},
		{"mss of wrong size", []byte{2, 3, 5, 1}, 0},
		{"two mss, the last wins", append(mssOpt(1000), mssOpt(1100)...), 1100},
	} {
		_, th := synV4(1, tc.opts...)
		if got := parseMSSOption(th); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// callHelper calls f on iph and th with th_len.
func callHelper(t *testing.T, env *fakeEnv, f Func, iph, th []byte, thLen uint64) int64 {
	t.Helper()
	env.mems = map[uint64][]byte{0x1000: iph, 0x2000: th}
	r, err := f(env, &[5]uint64{0x1000, 0x2000, thLen})
	if err != nil {
		t.Fatal(err)
	}
	return int64(r)
}

func TestTCPRawSyncookie(t *testing.T) {
	env := &fakeEnv{st: State{Syncookie: NewSyncookieSecret(3)}}
	for _, v6 := range []bool{false, true} {
		gen, check := TCPRawGenSyncookieV4, TCPRawCheckSyncookieV4
		mk := synV4
		dflt := uint16(536)
		if v6 {
			gen, check, mk, dflt = TCPRawGenSyncookieV6, TCPRawCheckSyncookieV6, synV6, 1220
		}
		iph, th := mk(1000, mssOpt(1400)...)
		r := callHelper(t, env, gen, iph, th, uint64(len(th)))
		if r < 0 {
			t.Fatalf("v6 %v: gen = %d", v6, r)
		}
		want := map[bool]uint16{false: 1300, true: 1220}[v6]
		if mss := uint16(r >> 32); mss != want || r>>48 != 0 {
			t.Errorf("v6 %v: gen = %#x, want MSS %d in bits 32-47", v6, r, want)
		}
		ack := ackFor(th, uint32(r))
		if got := callHelper(t, env, check, iph, ack, 0); got != 0 {
			t.Errorf("v6 %v: check of the answer = %d, want 0", v6, got)
		}
		bad := append([]byte(nil), ack...)
		bad[9]++ // ack + 0x10000
		if got := callHelper(t, env, check, iph, bad, 0); got != -13 {
			t.Errorf("v6 %v: check of a forged ack = %d, want -EACCES", v6, got)
		}
		other := &fakeEnv{st: State{Syncookie: NewSyncookieSecret(4)}}
		if got := callHelper(t, other, check, iph, ack, 0); got != -13 {
			t.Errorf("v6 %v: check under another secret = %d, want -EACCES", v6, got)
		}
		_, plain := mk(1000)
		if r := callHelper(t, env, gen, iph, plain, 20); r < 0 || uint16(r>>32) != dflt {
			t.Errorf("v6 %v: gen without MSS option = %#x, want MSS %d", v6, r, dflt)
		}
		// th_len must be at least a header and exactly doff*4.
		for _, n := range []uint64{0, 19, 20, 23, 28} {
			if got := callHelper(t, env, gen, iph, append(append([]byte(nil), th...), make([]byte, 8)...), n); got != -22 {
				t.Errorf("v6 %v: th_len %d with doff*4 = %d: %d, want -EINVAL", v6, n, len(th), got)
			}
		}
		// Not a SYN: Linux's raw helper does not look at the flags.
		fin := append([]byte(nil), th...)
		fin[13] = 0x11
		if r := callHelper(t, env, gen, iph, fin, uint64(len(fin))); r < 0 {
			t.Errorf("v6 %v: gen of a FIN = %d, want a cookie", v6, r)
		}
	}
}

func TestNewSyncookieSecret(t *testing.T) {
	if *NewSyncookieSecret(5) != *NewSyncookieSecret(5) {
		t.Error("the same seed gives different secrets")
	}
	if *NewSyncookieSecret(5) == *NewSyncookieSecret(6) {
		t.Error("two seeds give the same secret")
	}
	if *NewSyncookieSecret(0) == *NewSyncookieSecret(0) {
		t.Error("two random secrets are equal")
	}
}

func TestSyncookies_protos(t *testing.T) {
	for _, d := range Syncookies() {
		if Name(d.ID) != d.Name {
			t.Errorf("helper %d is %q, defined as %q", d.ID, Name(d.ID), d.Name)
		}
	}
}

func BenchmarkSyncookie(b *testing.B) {
	env := &fakeEnv{st: State{Syncookie: NewSyncookieSecret(3)}}
	for _, v6 := range []bool{false, true} {
		iph, th := synV4(1000, mssOpt(1460)...)
		gen, check := TCPRawGenSyncookieV4, TCPRawCheckSyncookieV4
		name := "ipv4"
		if v6 {
			iph, th = synV6(1000, mssOpt(1460)...)
			gen, check, name = TCPRawGenSyncookieV6, TCPRawCheckSyncookieV6, "ipv6"
		}
		env.mems = map[uint64][]byte{0x1000: iph, 0x2000: th}
		r, _ := gen(env, &[5]uint64{0x1000, 0x2000, uint64(len(th))})
		ack := ackFor(th, uint32(r))
		b.Run(name+"/gen", func(b *testing.B) {
			env.mems = map[uint64][]byte{0x1000: iph, 0x2000: th}
			args := [5]uint64{0x1000, 0x2000, uint64(len(th))}
			for b.Loop() {
				gen(env, &args)
			}
		})
		b.Run(name+"/check", func(b *testing.B) {
			env.mems = map[uint64][]byte{0x1000: iph, 0x2000: ack}
			args := [5]uint64{0x1000, 0x2000}
			for b.Loop() {
				if r, _ := check(env, &args); r != 0 {
					b.Fatal(int64(r))
				}
			}
		})
	}
}
