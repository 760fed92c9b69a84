package maps_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"

	"github.com/waggle-bpf/waggle/maps"
)

// A hash map counting packets per source, updated as a program updates it
// and read back from Go.
func Example() {
	m, err := maps.New(maps.Spec{Name: "pkts", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	// What bpf_map_update_elem does for a program on worker slot 0.
	prog := m.(maps.Elems)
	src := netip.MustParseAddr("10.0.0.1").As4()
	for range 3 {
		count := make([]byte, 8)
		if a := prog.LookupElem(0, src[:]); a != 0 {
			_ = m.Lookup(src[:], count)
		}
		binary.LittleEndian.PutUint64(count, binary.LittleEndian.Uint64(count)+1)
		_ = prog.UpdateElem(0, src[:], count, maps.UpdateAny)
	}
	err = m.Update(src[:], make([]byte, 8), maps.UpdateNoExist)
	fmt.Println("insert again:", err)

	for k, v := range maps.All(m) {
		fmt.Println(netip.AddrFrom4([4]byte(k)), binary.LittleEndian.Uint64(v))
	}
	// Output:
	// insert again: key already exists (EEXIST)
	// 10.0.0.1 3
}

// An LPM trie matching IPv4 addresses against prefixes.
func Example_lpmTrie() {
	m, err := maps.New(maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 1, MaxEntries: 16, Flags: maps.FlagNoPrealloc})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	key := func(p netip.Prefix) []byte {
		a := p.Addr().As4()
		return append(binary.LittleEndian.AppendUint32(nil, uint32(p.Bits())), a[:]...)
	}
	_ = m.Update(key(netip.MustParsePrefix("10.0.0.0/8")), []byte{1}, maps.UpdateAny)
	_ = m.Update(key(netip.MustParsePrefix("10.1.0.0/16")), []byte{2}, maps.UpdateAny)
	for _, addr := range []string{"10.1.2.3", "10.2.3.4", "192.168.0.1"} {
		v := make([]byte, 1)
		err := m.Lookup(key(netip.PrefixFrom(netip.MustParseAddr(addr), 32)), v)
		fmt.Println(addr, v[0], err)
	}
	// Output:
	// 10.1.2.3 2 <nil>
	// 10.2.3.4 1 <nil>
	// 192.168.0.1 0 key does not exist (ENOENT)
}

// A ring buffer: programs reserve and submit records, Go reads them in
// order.
func ExampleRingBufReader() {
	m, err := maps.New(maps.Spec{Type: maps.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	rb := m.(maps.RingBuffer)
	_ = rb.Output([]byte("hello"), 0)
	_ = rb.Output([]byte("world"), 0)

	r, err := maps.NewRingBufReader(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for range 2 {
		rec, err := r.Read()
		fmt.Printf("%s %v\n", rec.RawSample, err)
	}
	// Output:
	// hello <nil>
	// world <nil>
}
