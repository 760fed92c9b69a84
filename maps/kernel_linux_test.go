//go:build linux

package maps_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/maps"
)

// The kernel differential test: the same map created in Linux (through
// cilium/ebpf) and in waggle, the same random sequence of Go-side
// operations applied to both, identical results and errnos required after
// every step and identical contents at the end. It needs root (or
// CAP_BPF and CAP_NET_ADMIN) and skips cleanly without.

// diffSeed varies the random operations between runs:
// WAGGLE_DIFF_SEED=n go test ./maps -run KernelDiff. The default is 0, so
// plain runs are reproducible.
var diffSeed = func() uint64 {
	n, _ := strconv.ParseUint(os.Getenv("WAGGLE_DIFF_SEED"), 10, 64)
	return n
}()

// requireKernel skips the test unless maps can be created in the kernel.
func requireKernel(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("kernel maps need root")
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		tb.Skipf("kernel maps unavailable: %v", err)
	}
	m.Close()
}

// errnoOf returns the errno carried by err: 0 for nil, -1 for an error
// without one (an error cilium/ebpf raised before the syscall).
func kernelErrno(err error) int {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return -1
}

func waggleErrno(err error) int {
	if err == nil {
		return 0
	}
	var e maps.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return -1
}

func errnoName(n int) string {
	if n <= 0 {
		return fmt.Sprint(n)
	}
	return maps.Errno(n).Error()
}

func possibleCPUs(tb testing.TB) int {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func kernelSpec(s maps.Spec) *ebpf.MapSpec {
	ks := &ebpf.MapSpec{
		Name: s.Name, Type: ebpf.MapType(s.Type), KeySize: s.KeySize, ValueSize: s.ValueSize,
		MaxEntries: s.MaxEntries, Flags: s.Flags, MapExtra: s.MapExtra,
	}
	if s.InnerMap != nil {
		ks.InnerMap = kernelSpec(*s.InnerMap)
	}
	return ks
}

func isPerCPU(t maps.Type) bool {
	return t == maps.PerCPUArray || t == maps.PerCPUHash || t == maps.LRUPerCPUHash || t == maps.PerCPUCgroupStorage
}

// pair is one map in both worlds.
type pair struct {
	tb   testing.TB
	spec maps.Spec
	w    maps.Map
	k    *ebpf.Map
	cpus int
	step int
	log  []string
}

func newPair(tb testing.TB, spec maps.Spec) *pair {
	tb.Helper()
	spec.CPUs = possibleCPUs(tb)
	if err := features.HaveMapType(ebpf.MapType(spec.Type)); err != nil {
		tb.Skipf("kernel comparison: this kernel does not create %v maps: %v", ebpf.MapType(spec.Type), err)
	}
	w, err := maps.New(spec)
	if err != nil {
		tb.Fatalf("waggle: %v", err)
	}
	k, err := ebpf.NewMap(kernelSpec(spec))
	if err != nil {
		w.Close()
		tb.Fatalf("kernel: %v", err)
	}
	p := &pair{tb: tb, spec: w.Spec(), w: w, k: k, cpus: spec.CPUs}
	tb.Cleanup(func() { w.Close(); k.Close() })
	return p
}

func (p *pair) stride() int { return (int(p.spec.ValueSize) + 7) &^ 7 }

// goValueSize is the waggle Go-side value length.
func (p *pair) goValueSize() int {
	if isPerCPU(p.spec.Type) {
		return p.stride() * p.cpus
	}
	return int(p.spec.ValueSize)
}

// kernelValue converts a waggle value to what cilium/ebpf takes.
func (p *pair) kernelValue(v []byte) any {
	if !isPerCPU(p.spec.Type) {
		return v
	}
	out := make([][]byte, p.cpus)
	for c := range out {
		out[c] = v[c*p.stride() : c*p.stride()+int(p.spec.ValueSize)]
	}
	return out
}

// fromKernel flattens a per-CPU value read through cilium/ebpf.
func (p *pair) fromKernel(v [][]byte) []byte {
	out := make([]byte, p.goValueSize())
	for c, b := range v {
		copy(out[c*p.stride():], b)
	}
	return out
}

// comparable strips per-CPU padding, which the kernel's copy does not
// return through cilium/ebpf.
func (p *pair) comparable(v []byte) []byte {
	if !isPerCPU(p.spec.Type) {
		return v
	}
	out := make([]byte, 0, int(p.spec.ValueSize)*p.cpus)
	for c := range p.cpus {
		out = append(out, v[c*p.stride():c*p.stride()+int(p.spec.ValueSize)]...)
	}
	return out
}

func (p *pair) record(format string, args ...any) {
	p.step++
	p.log = append(p.log, fmt.Sprintf("%d: ", p.step)+fmt.Sprintf(format, args...))
	if len(p.log) > 12 {
		p.log = p.log[1:]
	}
}

func (p *pair) fail(format string, args ...any) {
	p.tb.Helper()
	p.tb.Fatalf("%s: step %d: %s\nrecent steps:\n  %s", p.spec.Type, p.step, fmt.Sprintf(format, args...), joinLines(p.log))
}

func joinLines(l []string) string {
	var b bytes.Buffer
	for i, s := range l {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func (p *pair) sameErr(op string, we, ke error) bool {
	p.tb.Helper()
	wn, kn := waggleErrno(we), kernelErrno(ke)
	if kn == -1 {
		p.tb.Fatalf("%s: kernel error without errno: %v", op, ke)
	}
	if wn != kn {
		p.fail("%s: waggle %s (%v), kernel %s (%v)", op, errnoName(wn), we, errnoName(kn), ke)
	}
	return wn == 0
}

func keyArg(key []byte) any {
	if key == nil {
		return nil
	}
	return key
}

func (p *pair) update(key, value []byte, flags uint64) {
	p.tb.Helper()
	p.record("update %x = %x flags %d", key, value, flags)
	we := p.w.Update(key, value, flags)
	ke := p.k.Update(keyArg(key), p.kernelValue(value), ebpf.MapUpdateFlags(flags))
	p.sameErr("update", we, ke)
}

func (p *pair) lookupBoth(key []byte) (wv, kv []byte, we, ke error) {
	wv = make([]byte, p.goValueSize())
	we = p.w.Lookup(key, wv)
	if isPerCPU(p.spec.Type) {
		var out [][]byte
		ke = p.k.Lookup(keyArg(key), &out)
		kv = p.fromKernel(out)
	} else {
		kv = make([]byte, p.spec.ValueSize)
		ke = p.k.Lookup(keyArg(key), kv)
	}
	return
}

func (p *pair) lookup(key []byte) {
	p.tb.Helper()
	p.record("lookup %x", key)
	wv, kv, we, ke := p.lookupBoth(key)
	if p.sameErr("lookup", we, ke) && !bytes.Equal(p.comparable(wv), p.comparable(kv)) {
		p.fail("lookup %x: waggle %x, kernel %x", key, wv, kv)
	}
}

// lookupValue is for bloom filters, whose lookup takes the value to test.
func (p *pair) lookupValue(value []byte) {
	p.tb.Helper()
	p.record("lookup value %x", value)
	we := p.w.Lookup(nil, value)
	ke := p.k.Lookup(nil, value)
	p.sameErr("lookup value", we, ke)
}

func (p *pair) delete(key []byte) {
	p.tb.Helper()
	p.record("delete %x", key)
	p.sameErr("delete", p.w.Delete(key), p.k.Delete(keyArg(key)))
}

func (p *pair) lookupAndDelete(key []byte) {
	p.tb.Helper()
	p.record("lookup and delete %x", key)
	wv := make([]byte, p.goValueSize())
	we := p.w.LookupAndDelete(key, wv)
	var kv []byte
	var ke error
	if isPerCPU(p.spec.Type) {
		var out [][]byte
		ke = p.k.LookupAndDelete(keyArg(key), &out)
		kv = p.fromKernel(out)
	} else {
		kv = make([]byte, p.spec.ValueSize)
		ke = p.k.LookupAndDelete(keyArg(key), kv)
	}
	if p.sameErr("lookup and delete", we, ke) && !bytes.Equal(p.comparable(wv), p.comparable(kv)) {
		p.fail("lookup and delete %x: waggle %x, kernel %x", key, wv, kv)
	}
}

func (p *pair) nextKey(key []byte) {
	p.tb.Helper()
	p.record("next key %x", key)
	wn := make([]byte, p.spec.KeySize)
	kn := make([]byte, p.spec.KeySize)
	we := p.w.NextKey(key, wn)
	ke := p.k.NextKey(keyArg(key), kn)
	if p.sameErr("next key", we, ke) && !bytes.Equal(wn, kn) {
		p.fail("next key %x: waggle %x, kernel %x", key, wn, kn)
	}
}

// keys walks a map with NextKey.
func walk(tb testing.TB, next func(prev, next []byte) error, keySize uint32) [][]byte {
	var out [][]byte
	var prev []byte
	for range 1 << 20 {
		k := make([]byte, keySize)
		if err := next(prev, k); err != nil {
			return out
		}
		out = append(out, k)
		prev = k
	}
	tb.Fatal("walk does not end")
	return nil
}

// contents compares the entries of both maps; ordered requires the same
// NextKey order (hash maps with BPF_F_ZERO_SEED, arrays, tries).
func (p *pair) contents(ordered bool) {
	p.tb.Helper()
	wk := walk(p.tb, p.w.NextKey, p.spec.KeySize)
	kk := walk(p.tb, func(prev, next []byte) error { return p.k.NextKey(keyArg(prev), next) }, p.spec.KeySize)
	if !ordered {
		slices.SortFunc(wk, bytes.Compare)
		slices.SortFunc(kk, bytes.Compare)
	}
	if len(wk) != len(kk) {
		p.fail("contents: waggle has %d keys, kernel %d", len(wk), len(kk))
	}
	for i := range wk {
		if !bytes.Equal(wk[i], kk[i]) {
			p.fail("contents: key %d: waggle %x, kernel %x", i, wk[i], kk[i])
		}
		wv, kv, we, ke := p.lookupBoth(wk[i])
		if p.sameErr("final lookup", we, ke) && !bytes.Equal(p.comparable(wv), p.comparable(kv)) {
			p.fail("contents: %x: waggle %x, kernel %x", wk[i], wv, kv)
		}
	}
}

// keyFor expands a small integer into a key of n bytes with varied bytes.
func keyFor(i, n int) []byte {
	k := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for j := range k {
		k[j] = byte(r.Uint32())
	}
	if n >= 4 {
		binary.LittleEndian.PutUint32(k, uint32(i))
	}
	return k
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randValue is a Go-side value: per-CPU copies with zero padding.
func (p *pair) randValue(r *rand.Rand) []byte {
	v := make([]byte, p.goValueSize())
	if !isPerCPU(p.spec.Type) {
		return randBytes(r, len(v))
	}
	for c := range p.cpus {
		copy(v[c*p.stride():], randBytes(r, int(p.spec.ValueSize)))
	}
	return v
}

func randFlags(r *rand.Rand) uint64 {
	switch r.IntN(10) {
	case 0:
		return uint64(r.IntN(8)) // includes BPF_F_LOCK and invalid combinations
	case 1, 2:
		return maps.UpdateNoExist
	case 3, 4:
		return maps.UpdateExist
	}
	return maps.UpdateAny
}

// pinCPU runs the calling goroutine on one CPU until the returned func is
// called, so the kernel's per-CPU state (LRU local lists) is deterministic.
func pinCPU(tb testing.TB) func() {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		tb.Fatal(err)
	}
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		tb.Fatal(err)
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// keyedOps runs random update/lookup/delete/next-key/lookup-and-delete
// steps on a keyed map whose keys come from domain integers. NextKey steps
// are compared only when ordered: a hash map's order depends on its seed.
func keyedOps(p *pair, r *rand.Rand, steps, domain int, key func(int) []byte, lookupAndDelete, ordered bool) {
	for range steps {
		k := key(r.IntN(domain))
		switch n := r.IntN(20); {
		case n < 8:
			p.update(k, p.randValue(r), randFlags(r))
		case n < 12:
			p.lookup(k)
		case n < 15:
			p.delete(k)
		case n < 18:
			if !ordered {
				p.lookup(k)
			} else if r.IntN(4) == 0 {
				p.nextKey(nil)
			} else {
				p.nextKey(k)
			}
		default:
			if lookupAndDelete {
				p.lookupAndDelete(k)
			} else {
				p.lookup(k)
			}
		}
	}
}

func TestKernelDiff_Array(t *testing.T) {
	requireKernel(t)
	for _, typ := range []maps.Type{maps.Array, maps.PerCPUArray} {
		for _, vs := range []uint32{4, 8, 13} {
			t.Run(fmt.Sprintf("%s/value%d", typ, vs), func(t *testing.T) {
				p := newPair(t, maps.Spec{Type: typ, KeySize: 4, ValueSize: vs, MaxEntries: 17})
				r := rand.New(rand.NewPCG(diffSeed+1, uint64(vs)))
				keyedOps(p, r, 3000, 20, func(i int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(i)) }, true, true)
				p.contents(true)
			})
		}
	}
}

func TestKernelDiff_Hash(t *testing.T) {
	requireKernel(t)
	for _, typ := range []maps.Type{maps.Hash, maps.PerCPUHash} {
		for _, ks := range []uint32{4, 6, 8, 13} {
			for _, flags := range []uint32{maps.FlagZeroSeed, 0, maps.FlagZeroSeed | maps.FlagNoPrealloc} {
				t.Run(fmt.Sprintf("%s/key%d/flags%#x", typ, ks, flags), func(t *testing.T) {
					p := newPair(t, maps.Spec{Type: typ, KeySize: ks, ValueSize: 12, MaxEntries: 50, Flags: flags})
					r := rand.New(rand.NewPCG(diffSeed+2, uint64(ks)<<8|uint64(flags)))
					ordered := flags&maps.FlagZeroSeed != 0
					keyedOps(p, r, 4000, 80, func(i int) []byte { return keyFor(i, int(ks)) }, true, ordered)
					// With a zero seed, waggle's buckets and chains are the
					// kernel's: NextKey agrees step by step, so compare
					// the order too.
					p.contents(ordered)
				})
			}
		}
	}
}

// TestKernelDiff_HashNextKeyOrder checks NextKey step by step, which only a
// zero seed makes comparable.
func TestKernelDiff_HashNextKeyOrder(t *testing.T) {
	requireKernel(t)
	p := newPair(t, maps.Spec{Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 64, Flags: maps.FlagZeroSeed})
	r := rand.New(rand.NewPCG(diffSeed+3, 3))
	for range 2000 {
		k := keyFor(r.IntN(100), 8)
		switch r.IntN(3) {
		case 0:
			p.update(k, randBytes(r, 8), maps.UpdateAny)
		case 1:
			p.delete(k)
		default:
			p.nextKey(k)
		}
	}
	p.contents(true)
}

func TestKernelDiff_LRU(t *testing.T) {
	requireKernel(t)
	for _, typ := range []maps.Type{maps.LRUHash, maps.LRUPerCPUHash} {
		for _, flags := range []uint32{maps.FlagZeroSeed, maps.FlagZeroSeed | maps.FlagNoCommonLRU} {
			// Keys fit in the map with room to spare for the kernel's
			// per-CPU free lists (target_free = max/cpus/2), so the
			// kernel evicts nothing either and both maps must agree on
			// everything.
			t.Run(fmt.Sprintf("%s/flags%#x/fits", typ, flags), func(t *testing.T) {
				defer pinCPU(t)()
				max := uint32(256)
				p := newPair(t, maps.Spec{Type: typ, KeySize: 8, ValueSize: 8, MaxEntries: max, Flags: flags})
				domain := int(p.spec.MaxEntries) / 2 / p.cpus
				r := rand.New(rand.NewPCG(diffSeed+4, uint64(flags)))
				keyedOps(p, r, 3000, domain, func(i int) []byte { return keyFor(i, 8) }, true, true)
				p.contents(true)
			})
		}
		// Many more keys than room: the kernel evicts in batches and
		// approximately, waggle one at a time and exactly. What stays
		// deterministic: operations on keys both maps hold agree, values
		// agree, and both maps stay within max_entries.
		t.Run(fmt.Sprintf("%s/evicting", typ), func(t *testing.T) {
			defer pinCPU(t)()
			p := newPair(t, maps.Spec{Type: typ, KeySize: 8, ValueSize: 8, MaxEntries: 64, Flags: maps.FlagZeroSeed})
			r := rand.New(rand.NewPCG(diffSeed+5, 5))
			lastW, lastK := map[string][]byte{}, map[string][]byte{}
			evictedSelf := 0
			for range 5000 {
				k := keyFor(r.IntN(400), 8)
				wv, kv, we, ke := p.lookupBoth(k)
				if we == nil && !bytes.Equal(p.comparable(wv), p.comparable(lastW[string(k)])) {
					p.fail("waggle lookup %x: %x, last written %x", k, wv, lastW[string(k)])
				}
				if ke == nil && !bytes.Equal(p.comparable(kv), p.comparable(lastK[string(k)])) {
					p.fail("kernel lookup %x: %x, last written %x", k, kv, lastK[string(k)])
				}
				switch r.IntN(3) {
				case 0, 1:
					v, f := p.randValue(r), randFlags(r)
					werr := p.w.Update(k, v, f)
					kerr := p.k.Update(k, p.kernelValue(v), ebpf.MapUpdateFlags(f))
					// Results can only differ where presence does, or
					// where the kernel's update evicted its own key: it
					// takes a free element (shrinking the list when it
					// runs out) before it checks the flags, so
					// BPF_NOEXIST on a present key can succeed and
					// BPF_EXIST can fail with ENOENT.
					selfEvicted := we == nil && ke == nil &&
						((f == maps.UpdateNoExist && errors.Is(werr, maps.EEXIST) && kerr == nil) ||
							(f == maps.UpdateExist && werr == nil && errors.Is(kerr, unix.ENOENT)))
					if selfEvicted {
						evictedSelf++
					} else if (we == nil) == (ke == nil) && waggleErrno(werr) != kernelErrno(kerr) {
						p.fail("update %x flags %d: waggle %v, kernel %v", k, f, werr, kerr)
					}
					if werr == nil {
						lastW[string(k)] = v
					}
					if kerr == nil {
						lastK[string(k)] = v
					}
				default:
					werr, kerr := p.w.Delete(k), p.k.Delete(k)
					if (we == nil) == (ke == nil) && waggleErrno(werr) != kernelErrno(kerr) {
						p.fail("delete %x: waggle %v, kernel %v", k, werr, kerr)
					}
				}
			}
			wk := walk(t, p.w.NextKey, 8)
			kk := walk(t, func(prev, next []byte) error { return p.k.NextKey(keyArg(prev), next) }, 8)
			if len(wk) > int(p.spec.MaxEntries) || len(kk) > int(p.spec.MaxEntries) {
				t.Fatalf("waggle holds %d keys, kernel %d, max %d", len(wk), len(kk), p.spec.MaxEntries)
			}
			t.Logf("at the end waggle holds %d keys, the kernel %d (max_entries %d); %d kernel updates evicted their own key", len(wk), len(kk), p.spec.MaxEntries, evictedSelf)
		})
	}
}

func TestKernelDiff_LPM(t *testing.T) {
	requireKernel(t)
	for _, dsize := range []int{4, 16, 3} {
		t.Run(fmt.Sprintf("data%d", dsize), func(t *testing.T) {
			p := newPair(t, maps.Spec{Type: maps.LPMTrie, KeySize: uint32(4 + dsize), ValueSize: 6, MaxEntries: 40, Flags: maps.FlagNoPrealloc})
			r := rand.New(rand.NewPCG(diffSeed+6, uint64(dsize)))
			bases := make([][]byte, 6)
			for i := range bases {
				bases[i] = randBytes(r, dsize)
			}
			maxPrefix := 8 * dsize
			randKey := func() []byte {
				k := make([]byte, 4+dsize)
				plen := r.IntN(maxPrefix + 1)
				if r.IntN(40) == 0 {
					plen = maxPrefix + 1 + r.IntN(3) // invalid
				}
				binary.LittleEndian.PutUint32(k, uint32(plen))
				copy(k[4:], bases[r.IntN(len(bases))])
				// Flip a few bits, often past the prefix.
				for range r.IntN(3) {
					b := r.IntN(maxPrefix)
					k[4+b/8] ^= 1 << (7 - b%8)
				}
				return k
			}
			var known [][]byte
			for range 4000 {
				k := randKey()
				switch n := r.IntN(20); {
				case n < 8:
					p.update(k, randBytes(r, 6), randFlags(r))
					known = append(known, k)
				case n < 13:
					full := slices.Clone(k)
					if r.IntN(2) == 0 {
						binary.LittleEndian.PutUint32(full, uint32(maxPrefix))
					}
					p.lookup(full)
				case n < 16:
					if len(known) > 0 && r.IntN(2) == 0 {
						k = known[r.IntN(len(known))]
					}
					p.delete(k)
				default:
					switch {
					case r.IntN(4) == 0:
						p.nextKey(nil)
					case len(known) > 0 && r.IntN(2) == 0:
						p.nextKey(known[r.IntN(len(known))])
					default:
						p.nextKey(k)
					}
				}
			}
			p.contents(true)
		})
	}
}

func TestKernelDiff_QueueStack(t *testing.T) {
	requireKernel(t)
	for _, typ := range []maps.Type{maps.Queue, maps.Stack} {
		t.Run(typ.String(), func(t *testing.T) {
			p := newPair(t, maps.Spec{Type: typ, ValueSize: 5, MaxEntries: 7})
			r := rand.New(rand.NewPCG(diffSeed+7, uint64(typ)))
			for range 3000 {
				switch n := r.IntN(10); {
				case n < 4:
					p.update(nil, randBytes(r, 5), randFlags(r))
				case n < 6:
					p.lookup(nil)
				case n < 9:
					p.lookupAndDelete(nil)
				default:
					p.delete(nil)
				}
			}
		})
	}
}

func TestKernelDiff_Bloom(t *testing.T) {
	requireKernel(t)
	for _, extra := range []uint64{0, 1, 3} {
		for _, vs := range []uint32{4, 7} {
			t.Run(fmt.Sprintf("hashes%d/value%d", extra, vs), func(t *testing.T) {
				// A small filter, so false positives happen: with a zero
				// seed they must be the kernel's.
				p := newPair(t, maps.Spec{Type: maps.BloomFilter, ValueSize: vs, MaxEntries: 20, MapExtra: extra, Flags: maps.FlagZeroSeed})
				r := rand.New(rand.NewPCG(diffSeed+8, extra<<8|uint64(vs)))
				for i := range 600 {
					v := keyFor(r.IntN(300), int(vs))
					if i%3 == 0 {
						p.update(nil, v, randFlags(r))
					} else {
						p.lookupValue(v)
					}
				}
				p.delete(nil)
			})
		}
	}
}

func TestKernelDiff_DevMap(t *testing.T) {
	requireKernel(t)
	lo := uint32(1) // the loopback interface exists in every namespace
	for _, typ := range []maps.Type{maps.DevMap, maps.DevMapHash} {
		for _, vs := range []uint32{4, 8} {
			t.Run(fmt.Sprintf("%s/value%d", typ, vs), func(t *testing.T) {
				p := newPair(t, maps.Spec{Type: typ, KeySize: 4, ValueSize: vs, MaxEntries: 8})
				r := rand.New(rand.NewPCG(diffSeed+9, uint64(vs)))
				for range 2000 {
					k := binary.LittleEndian.AppendUint32(nil, uint32(r.IntN(12)))
					switch n := r.IntN(10); {
					case n < 4:
						v := make([]byte, vs)
						if r.IntN(5) != 0 {
							binary.LittleEndian.PutUint32(v, lo)
						}
						if vs == 8 && r.IntN(4) == 0 {
							binary.LittleEndian.PutUint32(v[4:], 0xffffffff) // fd -1: no program
						}
						p.update(k, v, randFlags(r)&3)
					case n < 6:
						p.lookup(k)
					case n < 8:
						p.delete(k)
					default:
						p.nextKey(k)
					}
				}
				p.contents(true)
			})
		}
	}
}

func TestKernelDiff_CPUMap(t *testing.T) {
	requireKernel(t)
	cpus := possibleCPUs(t)
	p := newPair(t, maps.Spec{Type: maps.CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(cpus)})
	r := rand.New(rand.NewPCG(diffSeed+10, 10))
	for range 300 {
		k := binary.LittleEndian.AppendUint32(nil, uint32(r.IntN(cpus+2)))
		switch r.IntN(4) {
		case 0:
			q := []uint32{0, 1, 64, 16384, 16385, 30000}[r.IntN(6)]
			p.update(k, binary.LittleEndian.AppendUint32(nil, q), randFlags(r)&3)
		case 1:
			p.lookup(k)
		case 2:
			p.delete(k)
		default:
			p.nextKey(k)
		}
	}
	p.contents(true)
}

// TestKernelDiff_FdMaps compares what can be compared without file
// descriptors: flags and range errors, deletes of empty slots, NextKey.
func TestKernelDiff_FdMaps(t *testing.T) {
	requireKernel(t)
	inner := &maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2}
	for _, spec := range []maps.Spec{
		{Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4},
		{Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: inner},
		{Type: maps.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: inner},
		{Type: maps.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 2},
		{Type: maps.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4},
		{Type: maps.CgroupArray, KeySize: 4, ValueSize: 4, MaxEntries: 4},
	} {
		t.Run(spec.Type.String(), func(t *testing.T) {
			p := newPair(t, spec)
			for i := range uint32(6) {
				k := binary.LittleEndian.AppendUint32(nil, i)
				p.delete(k)
				p.nextKey(k)
				if spec.Type == maps.CgroupArray {
					p.lookup(k)
				}
				if spec.Type == maps.HashOfMaps || spec.Type == maps.XSKMap {
					continue // Linux resolves the descriptor before anything else
				}
				p.update(k, []byte{0, 0, 0, 0}, maps.UpdateExist|maps.UpdateNoExist)
				if i >= spec.MaxEntries {
					p.update(k, []byte{0, 0, 0, 0}, maps.UpdateAny) // E2BIG before the descriptor
				}
			}
			p.nextKey(nil)
		})
	}
}

// TestKernelDiff_CgroupStorage compares the Go side of cgroup storage maps
// that no attachment has bound a storage in: lookups and updates find
// nothing, deletes are refused, there is no first key.
func TestKernelDiff_CgroupStorage(t *testing.T) {
	requireKernel(t)
	for _, spec := range []maps.Spec{
		{Type: maps.CgroupStorage, KeySize: 16, ValueSize: 12},
		{Type: maps.CgroupStorage, KeySize: 8, ValueSize: 4},
		{Type: maps.PerCPUCgroupStorage, KeySize: 16, ValueSize: 8},
	} {
		t.Run(fmt.Sprintf("%s/%d", spec.Type, spec.KeySize), func(t *testing.T) {
			p := newPair(t, spec)
			for i := range uint32(3) {
				k := binary.LittleEndian.AppendUint64(nil, uint64(i))
				k = append(k, make([]byte, spec.KeySize-8)...)
				p.lookup(k)
				p.delete(k)
				p.nextKey(k)
				v := make([]byte, p.goValueSize())
				for _, f := range []uint64{maps.UpdateAny, maps.UpdateExist, maps.UpdateNoExist, maps.UpdateLock} {
					p.update(k, v, f)
				}
			}
			p.nextKey(nil)
		})
	}
}

func TestKernelDiff_RingBufStackTrace(t *testing.T) {
	requireKernel(t)
	rb := newPair(t, maps.Spec{Type: maps.RingBuf, MaxEntries: 4096})
	rb.sameErr("update", rb.w.Update(nil, nil, 0), rb.k.Update(nil, []byte{}, 0))
	rb.sameErr("delete", rb.w.Delete(nil), rb.k.Delete(nil))

	st := newPair(t, maps.Spec{Type: maps.StackTrace, KeySize: 4, ValueSize: 64, MaxEntries: 10})
	for i := range uint32(20) {
		k := binary.LittleEndian.AppendUint32(nil, i)
		st.lookup(k)
		st.delete(k)
		st.nextKey(k)
		st.update(k, make([]byte, 64), 0)
	}
	st.nextKey(nil)
}

// TestKernelDiff_Batch compares batch lookups and deletes of hash maps,
// bucket by bucket (a zero seed makes the buckets the kernel's).
func TestKernelDiff_Batch(t *testing.T) {
	requireKernel(t)
	for _, typ := range []maps.Type{maps.Hash, maps.PerCPUHash, maps.Array} {
		t.Run(typ.String(), func(t *testing.T) {
			p := newPair(t, maps.Spec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 64, Flags: map[bool]uint32{true: maps.FlagZeroSeed}[typ != maps.Array]})
			r := rand.New(rand.NewPCG(diffSeed+11, uint64(typ)))
			for i := range 40 {
				k := binary.LittleEndian.AppendUint32(nil, uint32(i*7))
				p.update(k, p.randValue(r), 0)
			}
			vs := p.goValueSize()
			var wc maps.BatchCursor
			var kc ebpf.MapBatchCursor
			for round := 0; ; round++ {
				n := 3 + round%5
				wk, wv := make([]byte, 4*n), make([]byte, vs*n)
				wn, we := maps.LookupBatch(p.w, &wc, wk, wv)
				kk32 := make([]uint32, n)
				kvs := make([]uint64, vs/8*n)
				kn, ke := p.k.BatchLookup(&kc, kk32, kvs, nil)
				kk, kv := make([]byte, 4*n), make([]byte, vs*n)
				for i, x := range kk32 {
					binary.LittleEndian.PutUint32(kk[i*4:], x)
				}
				for i, x := range kvs {
					binary.LittleEndian.PutUint64(kv[i*8:], x)
				}
				if wn != kn || waggleErrno(we) != kernelErrno(ke) {
					t.Fatalf("round %d: waggle %d, %v; kernel %d, %v", round, wn, we, kn, ke)
				}
				if !bytes.Equal(wk[:4*wn], kk[:4*kn]) || !bytes.Equal(wv[:vs*wn], kv[:vs*kn]) {
					t.Fatalf("round %d: waggle %x %x; kernel %x %x", round, wk, wv, kk, kv)
				}
				if we != nil && !errors.Is(we, maps.ErrKeyNotExist) && !errors.Is(we, maps.ENOSPC) {
					t.Fatal(we)
				}
				if errors.Is(we, maps.ErrKeyNotExist) {
					break
				}
			}
			if typ == maps.Array {
				return
			}
			keys, keys32 := make([]byte, 0), make([]uint32, 0)
			for i := range 10 {
				keys = binary.LittleEndian.AppendUint32(keys, uint32(i*7+(i%3)))
				keys32 = append(keys32, uint32(i*7+(i%3)))
			}
			wn, we := maps.DeleteBatch(p.w, keys)
			kn, ke := p.k.BatchDelete(keys32, nil)
			if wn != kn || waggleErrno(we) != kernelErrno(ke) {
				t.Fatalf("delete batch: waggle %d, %v; kernel %d, %v", wn, we, kn, ke)
			}
			p.contents(true)
		})
	}
}

// TestKernelDiff_Create creates random specs in both worlds and requires
// the same errno (or success). ENOMEM is the machine's answer, not the
// map's, and is skipped; so are types waggle refuses.
func TestKernelDiff_Create(t *testing.T) {
	requireKernel(t)
	cpus := possibleCPUs(t)
	types := []maps.Type{
		maps.UnspecifiedMap, maps.Hash, maps.Array, maps.ProgArray, maps.PerfEventArray, maps.PerCPUHash,
		maps.PerCPUArray, maps.StackTrace, maps.LRUHash, maps.LRUPerCPUHash, maps.LPMTrie,
		maps.ArrayOfMaps, maps.HashOfMaps, maps.DevMap, maps.CPUMap, maps.XSKMap, maps.Queue,
		maps.Stack, maps.DevMapHash, maps.RingBuf, maps.BloomFilter, maps.CgroupArray,
		maps.CgroupStorage, maps.PerCPUCgroupStorage, maps.UserRingBuf, 40,
	}
	sizes := []uint32{0, 1, 3, 4, 5, 8, 12, 16, 20, 36, 64, 260, 261, 1016, 1024, 32768, 32769, 65407, 65408, 4 << 20, 4<<20 + 1}
	entries := []uint32{0, 1, 2, 3, 7, 64, 100, 4096, 8192, 12288, 1 << 16}
	flagBits := []uint32{
		maps.FlagNoPrealloc, maps.FlagNoCommonLRU, maps.FlagRdOnly, maps.FlagWrOnly,
		maps.FlagZeroSeed, maps.FlagRdOnlyProg, maps.FlagWrOnlyProg, maps.FlagMmapable, maps.FlagPreserve,
		maps.FlagInnerMap, 1 << 5, 1 << 9, 1 << 13, 1 << 20,
	}
	r := rand.New(rand.NewPCG(diffSeed+12, 12))
	var same, skipped int
	for i := range 6000 {
		s := maps.Spec{
			Name:       []string{"m", "ok_name.1", "bad-name"}[r.IntN(3)],
			Type:       types[r.IntN(len(types))],
			KeySize:    sizes[r.IntN(len(sizes))],
			ValueSize:  sizes[r.IntN(len(sizes))],
			MaxEntries: entries[r.IntN(len(entries))],
		}
		for range r.IntN(3) {
			s.Flags |= flagBits[r.IntN(len(flagBits))]
		}
		if r.IntN(8) == 0 {
			s.MapExtra = uint64(r.IntN(40))
		}
		// Bias towards plausible specs, so the checks past the first are
		// reached too.
		if r.IntN(2) == 0 {
			switch s.Type {
			case maps.Array, maps.PerCPUArray, maps.DevMap, maps.CPUMap, maps.XSKMap, maps.ProgArray, maps.PerfEventArray, maps.ArrayOfMaps, maps.DevMapHash, maps.StackTrace:
				s.KeySize = 4
			case maps.Queue, maps.Stack, maps.BloomFilter, maps.RingBuf, maps.UserRingBuf:
				s.KeySize = 0
			case maps.LPMTrie:
				s.KeySize = 4 + uint32(r.IntN(20))
				s.Flags |= maps.FlagNoPrealloc
			case maps.CgroupStorage, maps.PerCPUCgroupStorage:
				s.KeySize = []uint32{8, 16}[r.IntN(2)]
				s.MaxEntries = 0
			}
			if s.Type == maps.RingBuf || s.Type == maps.UserRingBuf {
				s.ValueSize = 0
			}
		}
		if s.Type == maps.ArrayOfMaps || s.Type == maps.HashOfMaps {
			s.InnerMap = &maps.Spec{Type: []maps.Type{maps.Array, maps.Hash, maps.ArrayOfMaps, maps.Queue}[r.IntN(4)], KeySize: 4, ValueSize: 8, MaxEntries: 4}
			if s.InnerMap.Type == maps.Queue {
				s.InnerMap.KeySize = 0
			}
		}
		// cilium/ebpf clamps these to the possible CPUs before the syscall.
		if (s.Type == maps.PerfEventArray || s.Type == maps.CPUMap) && (s.MaxEntries == 0 || s.MaxEntries > uint32(cpus)) {
			s.MaxEntries = uint32(cpus)
		}
		if s.Type == maps.PerfEventArray && (s.KeySize != 4 || s.ValueSize != 4) {
			continue // cilium/ebpf refuses or rewrites these itself
		}
		if (s.Type == maps.ArrayOfMaps || s.Type == maps.HashOfMaps) && s.ValueSize != 4 {
			continue
		}
		// Keep what the kernel would really allocate small.
		if uint64(s.MaxEntries)*uint64(s.KeySize+s.ValueSize) > 64<<20 && s.Type != maps.LPMTrie {
			continue
		}
		ws := s
		ws.CPUs = cpus
		wm, we := maps.New(ws)
		km, ke := ebpf.NewMap(kernelSpec(s))
		if wm != nil {
			wm.Close()
		}
		if km != nil {
			km.Close()
		}
		wn, kn := waggleErrno(we), kernelErrno(ke)
		if kn == -1 || kn == int(unix.ENOMEM) || wn == int(maps.EOPNOTSUPP) && kn == 0 {
			skipped++
			continue
		}
		if s.Name == "bad-name" && kn == 0 {
			// cilium/ebpf strips characters the kernel refuses.
			skipped++
			continue
		}
		if wn != kn {
			t.Fatalf("spec %d %+v (inner %+v): waggle %s (%v), kernel %s (%v)", i, s, s.InnerMap, errnoName(wn), we, errnoName(kn), ke)
		}
		same++
	}
	t.Logf("%d specs agreed, %d skipped", same, skipped)
}
