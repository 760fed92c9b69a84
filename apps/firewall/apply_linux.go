package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// Apply attaches the firewall, with c's rules, to the XDP hook of
// opts.Interface and pins it under opts.PinDir. The maps are born filled
// (the spec's contents), so the program never runs on empty lists.
//
// If opts.PinDir already holds a firewall (an earlier Apply), Apply
// reloads it instead: it changes the pinned maps in place, each entry by
// one atomic update, in an order that never leaves a packet without a
// rule the old or the new configuration gives it: first the new and
// changed prefixes, then the configuration, then the removal of prefixes
// the new configuration lacks. If this binary's program differs from the
// attached one (another version of firewall.o), the new program, sharing
// the pinned maps, replaces the old through the link in one atomic
// update (BPF_LINK_UPDATE): every packet meets one or the other.
func Apply(c *Compiled, opts ApplyOptions) (*ApplyResult, error) {
	if opts.PinDir == "" {
		return nil, errors.New("firewall: apply needs a pin directory")
	}
	if _, err := os.Stat(filepath.Join(opts.PinDir, "maps", MapConfig)); err == nil {
		return reload(c, opts.PinDir)
	}
	if err := kernel.CheckPinDir(opts.PinDir); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "firewall-*.o")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(object); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	var conf []byte
	a, err := kernel.AttachFile(tmp.Name(), kernel.AttachOptions{
		Program: ProgramName,
		Hook:    kernel.Hook{Kind: kernel.HookXDP, Interface: opts.Interface, XDPMode: opts.Mode},
		Prepare: func(spec *ebpf.CollectionSpec) (err error) {
			if conf, err = c.forKernel(spec); err != nil {
				return err
			}
			return c.contents(spec, conf)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	defer a.Close()
	pinned, err := a.Pin(opts.PinDir)
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return &ApplyResult{Pinned: pinned, SYNProtection: SYNProtection(conf)}, nil
}

// haveCookieHelpers reports whether the kernel offers XDP programs the
// socket-less SYN cookie helpers (Linux 6.0).
func haveCookieHelpers() (bool, error) {
	for _, fn := range []asm.BuiltinFunc{asm.FnTcpRawGenSyncookieIpv4, asm.FnTcpRawGenSyncookieIpv6,
		asm.FnTcpRawCheckSyncookieIpv4, asm.FnTcpRawCheckSyncookieIpv6} {
		err := features.HaveProgramHelper(ebpf.XDP, fn)
		if errors.Is(err, ebpf.ErrNotSupported) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("firewall: probe %v: %w", fn, err)
		}
	}
	return true, nil
}

// forKernel returns the struct config to apply for c on this kernel, and
// sets spec's fw_cookie_helpers to match: with syn_cookies auto where the
// kernel lacks the SYN cookie helpers, the cookie flag is cleared and the
// calls become dead code the verifier skips; with on, that is an error.
func (c *Compiled) forKernel(spec *ebpf.CollectionSpec) ([]byte, error) {
	have := true
	if c.SYNCookies == "on" || c.SYNCookies == "auto" {
		var err error
		if have, err = haveCookieHelpers(); err != nil {
			return nil, err
		}
	}
	return c.forHelpers(spec, have)
}

// forHelpers is forKernel for a kernel that has the SYN cookie helpers
// or not.
func (c *Compiled) forHelpers(spec *ebpf.CollectionSpec, have bool) ([]byte, error) {
	conf := bytes.Clone(c.Config)
	if !have && c.SYNCookies != "off" {
		if c.SYNCookies == "on" {
			return nil, errors.New("firewall: options.syn_cookies is on, but this kernel lacks the SYN cookie helpers (bpf_tcp_raw_gen_syncookie_ipv4, Linux 6.0): use auto to fall back to the per-source SYN rate")
		}
		ne.PutUint32(conf, ne.Uint32(conf)&^flagSYNCookies)
	}
	v := spec.Variables[cookieHelpersVar]
	if v == nil {
		return nil, fmt.Errorf("firewall: the object has no variable %s", cookieHelpersVar)
	}
	var val uint32
	if have {
		val = 1
	}
	if err := v.Set(val); err != nil {
		return nil, fmt.Errorf("firewall: %s: %w", cookieHelpersVar, err)
	}
	return conf, nil
}

// contents puts c's maps' contents into spec, for an attached program
// (no replay flag), with conf for struct config (forKernel's).
func (c *Compiled) contents(spec *ebpf.CollectionSpec, conf []byte) error {
	ms := spec.Maps[MapConfig]
	if ms == nil {
		return fmt.Errorf("firewall: the object has no map %s", MapConfig)
	}
	ms.Contents = []ebpf.MapKV{{Key: uint32(0), Value: conf}}
	for i := range c.Lists {
		l := &c.Lists[i]
		ms := spec.Maps[l.Map]
		if ms == nil {
			return fmt.Errorf("firewall: the object has no map %s", l.Map)
		}
		ms.Contents = make([]ebpf.MapKV, l.Len())
		for j := range l.Len() {
			k, v := l.Entry(j)
			ms.Contents[j] = ebpf.MapKV{Key: k, Value: v}
		}
	}
	return nil
}

// openPinned opens a pinned map of the firewall's.
func openPinned(dir, name string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", kernel.MapPinName(name)), nil)
	if err != nil {
		return nil, fmt.Errorf("firewall: %s: map %s: %w", dir, name, err)
	}
	return m, nil
}

// reload changes an applied firewall's maps in place (reloadLists).
func reload(c *Compiled, dir string) (*ApplyResult, error) {
	spec, err := Spec()
	if err != nil {
		return nil, err
	}
	conf, err := c.forKernel(spec)
	if err != nil {
		return nil, err
	}
	res := &ApplyResult{Reloaded: true, SYNProtection: SYNProtection(conf)}
	lists := make([]listMap, len(c.Lists))
	for i := range c.Lists {
		l := &c.Lists[i]
		m, err := openPinned(dir, l.Map)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		if int(m.KeySize()) != l.KeySize || int(m.ValueSize()) != l.ValueSize {
			return nil, fmt.Errorf("firewall: %s: map %s has keys of %d and values of %d bytes, not this firewall's", dir, l.Map, m.KeySize(), m.ValueSize())
		}
		have := map[string][]byte{}
		k, v := make([]byte, l.KeySize), make([]byte, l.ValueSize)
		it := m.Iterate()
		for it.Next(&k, &v) {
			have[string(k)] = bytes.Clone(v)
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("firewall: map %s: %w", l.Map, err)
		}
		lists[i] = listMap{name: l.Map, have: have,
			put: func(k, v []byte) error { return m.Put(k, v) },
			del: func(k []byte) error {
				if err := m.Delete(k); !errors.Is(err, ebpf.ErrKeyNotExist) {
					return err
				}
				return nil
			}}
	}
	err = reloadLists(c, lists, func() error {
		cm, err := openPinned(dir, MapConfig)
		if err != nil {
			return err
		}
		defer cm.Close()
		if err := cm.Put(uint32(0), conf); err != nil {
			return fmt.Errorf("firewall: map %s: %w", MapConfig, err)
		}
		return nil
	}, res)
	if err != nil {
		return nil, err
	}
	swapped, err := swapProgram(dir, spec)
	if err != nil {
		return nil, err
	}
	res.Swapped = swapped
	return res, nil
}

// swapProgram loads spec's program with the pinned maps and, if its tag
// differs from the attached program's, puts it on the pinned link
// (BPF_LINK_UPDATE) and in the program's pin. It reports whether it did.
func swapProgram(dir string, spec *ebpf.CollectionSpec) (bool, error) {
	old, err := ebpf.LoadPinnedProgram(filepath.Join(dir, "prog"), nil)
	if err != nil {
		return false, fmt.Errorf("firewall: %s: program: %w", dir, err)
	}
	defer old.Close()
	repl := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range repl {
			m.Close()
		}
	}()
	for name := range spec.Maps {
		m, err := openPinned(dir, name)
		if err != nil {
			return false, fmt.Errorf("%w (a firewall of another layout: detach it and apply again)", err)
		}
		repl[name] = m
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		return false, fmt.Errorf("firewall: load the new program with the pinned maps: %w", err)
	}
	defer coll.Close()
	prog := coll.Programs[ProgramName]
	oi, err := old.Info()
	if err != nil {
		return false, fmt.Errorf("firewall: %w", err)
	}
	ni, err := prog.Info()
	if err != nil {
		return false, fmt.Errorf("firewall: %w", err)
	}
	if oi.Tag == ni.Tag {
		return false, nil
	}
	l, err := link.LoadPinnedLink(filepath.Join(dir, "link"), nil)
	if err != nil {
		return false, fmt.Errorf("firewall: %s: link: %w", dir, err)
	}
	defer l.Close()
	if err := l.Update(prog); err != nil {
		return false, fmt.Errorf("firewall: swap the program through the link: %w", err)
	}
	if err := old.Unpin(); err != nil {
		return true, fmt.Errorf("firewall: the new program runs, but unpinning the old: %w", err)
	}
	if err := prog.Pin(filepath.Join(dir, "prog")); err != nil {
		return true, fmt.Errorf("firewall: the new program runs, but pinning it: %w", err)
	}
	return true, nil
}

// PinnedCounters reads the per-rule counters of the firewall Apply pinned
// under dir, summed over CPUs, for the rules that counted something.
func PinnedCounters(dir string) (map[uint32]Counter, error) {
	p, err := OpenPinned(dir)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Counters()
}

// CaptureDropped calls write with each sample of a dropped packet of the
// firewall Apply pinned under dir (one drop in Options.SampleEvery), until
// ctx ends. With Options.SampleAll the ring buffer holds the other
// verdicts' samples too: CaptureDropped skips them.
func CaptureDropped(ctx context.Context, dir string, write func(Sample) error) error {
	return captureSamples(ctx, dir, func(s Sample) error {
		if s.Action != XDPDrop {
			return nil
		}
		return write(s)
	})
}

// CaptureAll calls write with every sample of the firewall Apply pinned
// under dir, whatever its verdict, until ctx ends: with Options.SampleAll
// one packet in Options.SampleEvery, each with the rule, the action and
// the program's clock it was decided by. A CPU's samples come in the
// order it decided the packets. With SampleEvery 1, and as long as the
// ring buffer (1 MiB: about 6,500 samples) is read as fast as it fills,
// that is every packet: replaying them with Sample.Time as their time
// gives the same verdicts, rules and counters as the kernel. CaptureAll
// fails if the applied configuration does not set Options.SampleAll.
func CaptureAll(ctx context.Context, dir string, write func(Sample) error) error {
	cfg, err := pinnedConfig(dir)
	if err != nil {
		return err
	}
	if ne.Uint32(cfg)&flagSampleAll == 0 {
		return fmt.Errorf("firewall: %s samples dropped packets only: apply a configuration with options.sample_all", dir)
	}
	return captureSamples(ctx, dir, write)
}

// pinnedConfig reads the struct config of the firewall pinned under dir.
func pinnedConfig(dir string) ([]byte, error) {
	m, err := openPinned(dir, MapConfig)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	b, err := m.LookupBytes(uint32(0))
	if err != nil {
		return nil, fmt.Errorf("firewall: %s: map %s: %w", dir, MapConfig, err)
	}
	if len(b) < configSize {
		return nil, fmt.Errorf("firewall: %s: a config of %d bytes, not %d (a firewall of another version)", dir, len(b), configSize)
	}
	return b, nil
}

// captureSamples calls write with each record of the pinned ring buffer
// "samples", until ctx ends. A Sample's Data is valid until write returns.
func captureSamples(ctx context.Context, dir string, write func(Sample) error) error {
	m, err := openPinned(dir, MapSamples)
	if err != nil {
		return err
	}
	defer m.Close()
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		return fmt.Errorf("firewall: samples: %w", err)
	}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("firewall: samples: %w", err)
		}
		s, err := ParseSample(rec.RawSample)
		if err != nil {
			return err
		}
		if err := write(s); err != nil {
			return err
		}
	}
}

// WallClockShift is what to add to the program's clock attached
// (bpf_ktime_get_ns, CLOCK_MONOTONIC) to read it as the wall clock:
// CLOCK_REALTIME minus CLOCK_MONOTONIC now, rounded to a whole second.
//
// The whole second keeps a capture replayable: the program's only use of
// its clock's absolute value is the attack window (now / 1e9), whose
// boundaries a whole-second shift keeps, and every rate limit compares
// differences of times. So a pcap whose timestamps are Sample.Timestamp
// (the kernel's time plus the shift) replays with the kernel's verdicts;
// its timestamps are the wall clock's to within half a second.
func WallClockShift() (time.Duration, error) {
	var mono, wall unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0, fmt.Errorf("firewall: CLOCK_MONOTONIC: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &wall); err != nil {
		return 0, fmt.Errorf("firewall: CLOCK_REALTIME: %w", err)
	}
	d := time.Duration(wall.Nano() - mono.Nano())
	return d.Round(time.Second), nil
}
