package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mapjson"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
)

// objectMaps are a collection's maps as --map-init, --map-dump and
// --events see them: in the object's order, each with its BTF.
type objectMaps struct {
	coll  *waggle.Collection
	order []string
	desc  map[string]*mapjson.Map
	// initialized are the maps init put elements in.
	initialized map[string]bool
}

// newObjectMaps describes the maps of coll, loaded from obj. A map whose
// BTF does not fit its sizes is described without it (its elements print
// as hex), with a warning on warn.
func newObjectMaps(obj *loader.Object, coll *waggle.Collection, warn func(string)) *objectMaps {
	om := &objectMaps{coll: coll, desc: map[string]*mapjson.Map{}, initialized: map[string]bool{}}
	for _, ms := range obj.Maps {
		m, ok := coll.Maps[ms.Name]
		if !ok {
			continue
		}
		d := &mapjson.Map{Name: ms.Name, Type: m.Type(), KeySize: m.KeySize(), ValueSize: m.ValueSize(),
			MaxEntries: m.MaxEntries(), Key: ms.Key, Value: ms.Value, CPUs: coll.CPUs()}
		if err := d.Check(); err != nil {
			warn(fmt.Sprintf("%v; its elements print as hex", err))
			d.Key, d.Value = nil, nil
		}
		om.order = append(om.order, ms.Name)
		om.desc[ms.Name] = d
	}
	return om
}

func (om *objectMaps) names() string { return strings.Join(om.order, ", ") }

// typeName is the map type as bpftool names it (libbpf_bpf_map_type_str).
func typeName(t ebpf.MapType) string {
	switch t {
	case ebpf.RingBuf:
		return "ringbuf"
	case ebpf.UserRingbuf:
		return "user_ringbuf"
	case ebpf.PerfEventArray:
		return "perf_event_array"
	case ebpf.ProgramArray:
		return "prog_array"
	case ebpf.PerCPUHash:
		return "percpu_hash"
	case ebpf.PerCPUArray:
		return "percpu_array"
	case ebpf.LRUHash:
		return "lru_hash"
	case ebpf.LRUCPUHash:
		return "lru_percpu_hash"
	case ebpf.LPMTrie:
		return "lpm_trie"
	case ebpf.ArrayOfMaps:
		return "array_of_maps"
	case ebpf.HashOfMaps:
		return "hash_of_maps"
	case ebpf.BloomFilter:
		return "bloom_filter"
	}
	return strings.ToLower(t.String())
}

// elementless reports why a map has no elements to set or dump ("" if it
// has): its contents are records or objects, not keys and values.
func elementless(t ebpf.MapType) string {
	switch t {
	case ebpf.RingBuf, ebpf.PerfEventArray:
		return "it holds records, not elements (--events prints them)"
	case ebpf.UserRingbuf:
		return "it holds records user space produces, not elements"
	case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
		return "its values have no keys to dump"
	}
	return ""
}

// init applies --map-init: each argument is a file of dumps as --map-dump
// prints them ({"maps": {NAME: [entries]}}, the output of a run, its text
// lines before the JSON skipped), or NAME=FILE with one map's entries as
// bpftool map dump -j prints them.
func (om *objectMaps) init(args []string) error {
	for _, arg := range args {
		var dumps []mapjson.Dump
		file := arg
		if name, path, ok := strings.Cut(arg, "="); ok && om.desc[name] != nil {
			file = path
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("--map-init: %w", err)
			}
			n, err := mapjson.ParseNode(data)
			if err != nil {
				return fmt.Errorf("--map-init %s: not JSON: %w", path, err)
			}
			if n.Kind != 'a' {
				return fmt.Errorf("--map-init %s: want the array of entries bpftool map dump -j prints for map %s", path, name)
			}
			dumps = []mapjson.Dump{{Name: name, Entries: n.Items}}
		} else {
			var err error
			if dumps, err = readDumps(arg); err != nil {
				return err
			}
		}
		for _, d := range dumps {
			if err := om.set(d); err != nil {
				return fmt.Errorf("--map-init %s: %w", file, err)
			}
		}
	}
	return nil
}

// readDumps reads the dumps of a file --map-dump wrote.
func readDumps(path string) ([]mapjson.Dump, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--map-init: %w", err)
	}
	// Skip the lines a text-mode run prints before its JSON.
	start := 0
	for start < len(data) && data[start] != '{' {
		nl := bytes.IndexByte(data[start:], '\n')
		if nl < 0 {
			start = len(data)
			break
		}
		start += nl + 1
	}
	// Blank them out rather than cut them, so errors give the file's lines.
	for i := range data[:start] {
		if data[i] != '\n' {
			data[i] = ' '
		}
	}
	nodes, err := mapjson.ParseNodes(data)
	if err != nil {
		return nil, fmt.Errorf("--map-init %s: not JSON: %w", path, err)
	}
	var all []mapjson.Dump
	found := false
	for _, n := range nodes {
		dumps, ok, err := mapjson.Dumps(n)
		if err != nil {
			return nil, fmt.Errorf("--map-init %s: %w", path, err)
		}
		found = found || ok
		all = append(all, dumps...)
	}
	if !found {
		return nil, fmt.Errorf(`--map-init %s: no "maps" object: give what --map-dump prints ({"maps": {"NAME": [entries]}}), or NAME=FILE with bpftool's dump of one map`, path)
	}
	return all, nil
}

// set stores the entries of one dump.
func (om *objectMaps) set(d mapjson.Dump) error {
	desc, ok := om.desc[d.Name]
	if !ok {
		return fmt.Errorf("map %s: no such map; the object has %s", d.Name, om.names())
	}
	m := om.coll.Maps[d.Name]
	if desc.Type == ebpf.RingBuf || desc.Type == ebpf.PerfEventArray || desc.Type == ebpf.UserRingbuf {
		return fmt.Errorf("map %s: a %s cannot be set: %s", d.Name, typeName(desc.Type), elementless(desc.Type))
	}
	om.initialized[d.Name] = true
	base := func(key []byte) []byte {
		if desc.KeySize == 0 {
			return nil
		}
		v, err := m.LookupBytes(key)
		if err != nil {
			return nil
		}
		return v
	}
	for i, n := range d.Entries {
		el, err := desc.ParseEntry(n, i+1, base)
		if err != nil {
			return err
		}
		var key any = el.Key
		if desc.KeySize == 0 {
			key = nil
		}
		var value any = el.Value
		switch {
		case el.Object != "" && desc.Type == ebpf.ProgramArray:
			p, ok := om.coll.Programs[el.Object]
			if !ok {
				return fmt.Errorf("map %s, entry %d: value: no program %q; the object has %s", d.Name, i+1, el.Object, programList(om.coll))
			}
			value = p
		case el.Object != "":
			inner, ok := om.coll.Maps[el.Object]
			if !ok {
				return fmt.Errorf("map %s, entry %d: value: no map %q; the object has %s", d.Name, i+1, el.Object, om.names())
			}
			value = inner
		}
		if err := m.Put(key, value); err != nil {
			return fmt.Errorf("map %s, entry %d: %w", d.Name, i+1, err)
		}
	}
	return nil
}

// checkDump checks the names --map-dump gives before a run.
func (om *objectMaps) checkDump(names []string) error {
	for _, name := range names {
		desc, ok := om.desc[name]
		if !ok {
			return fmt.Errorf("--map-dump: no map %q; the object has %s", name, om.names())
		}
		if why := dumpable(desc.Type); why != "" {
			return fmt.Errorf("--map-dump: map %s is a %s: %s", name, typeName(desc.Type), why)
		}
	}
	return nil
}

// dump returns the maps of the --map-dump document for the named maps
// (every map with elements when names is empty): {NAME: [entries]},
// compact, what goes under "maps".
func (om *objectMaps) dump(names []string) (json.RawMessage, error) {
	if len(names) == 0 {
		for _, n := range om.order {
			if dumpable(om.desc[n].Type) == "" {
				names = append(names, n)
			}
		}
	}
	b := []byte(`{`)
	seen := map[string]bool{}
	for _, name := range names {
		desc, ok := om.desc[name]
		if !ok {
			return nil, fmt.Errorf("--map-dump: no map %q; the object has %s", name, om.names())
		}
		if why := dumpable(desc.Type); why != "" {
			return nil, fmt.Errorf("--map-dump: map %s is a %s: %s", name, typeName(desc.Type), why)
		}
		if seen[name] {
			continue
		}
		if len(seen) > 0 {
			b = append(b, ',')
		}
		seen[name] = true
		q, _ := json.Marshal(name) // a string always marshals
		b = append(append(b, q...), ':', '[')
		first := true
		for k, v := range om.coll.Maps[name].All() {
			if !first {
				b = append(b, ',')
			}
			first = false
			var err error
			if b, err = desc.AppendEntry(b, k, v); err != nil {
				return nil, fmt.Errorf("--map-dump: %w", err)
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// printDump prints the --map-dump document of text mode.
func (e *env) printDump(maps json.RawMessage) {
	doc := append(append([]byte(`{"maps":`), maps...), '}')
	e.stdout.Write(indentJSON(doc))
}

// dumpable says why a map's elements cannot be dumped ("" if they can).
func dumpable(t ebpf.MapType) string {
	switch t {
	case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return "its values are programs or maps, which have no bytes to print"
	}
	return elementless(t)
}

// eventPrinter prints the records programs write to ring buffers and perf
// event arrays (--events), after each run.
type eventPrinter struct {
	e      *env
	asJSON bool
	rings  []namedRing
	perfs  []namedPerf
	rec    maps.RingBufRecord
	prec   maps.PerfRecord
	// kernel reads the kernel's, for --engine kernel
	// (newKernelEventPrinter, Linux only).
	kernel kernelEvents
}

// kernelEvents reads the records of the kernel's ring buffers and perf
// event arrays and prints them with an eventPrinter.
type kernelEvents interface {
	drain(ep *eventPrinter, packet int)
	close()
}

type namedRing struct {
	name string
	r    *maps.RingBufReader
}

type namedPerf struct {
	name string
	r    *maps.PerfReader
}

// perfBuffer is the ring each CPU gets for --events: records are read
// after every packet, so a small ring holds them.
const perfBuffer = 64 << 10

func newEventPrinter(e *env, om *objectMaps, asJSON bool) (*eventPrinter, error) {
	ep := &eventPrinter{e: e, asJSON: asJSON}
	for _, name := range om.order {
		m := om.coll.Maps[name]
		switch m.Type() {
		case ebpf.RingBuf:
			r, err := maps.NewRingBufReader(m.Underlying())
			if err != nil {
				ep.close()
				return nil, fmt.Errorf("--events: map %s: %w", name, err)
			}
			ep.rings = append(ep.rings, namedRing{name, r})
		case ebpf.PerfEventArray:
			r, err := maps.NewPerfReader(m.Underlying(), perfBuffer)
			if err != nil {
				ep.close()
				return nil, fmt.Errorf("--events: map %s: %w", name, err)
			}
			ep.perfs = append(ep.perfs, namedPerf{name, r})
		}
	}
	if len(ep.rings) == 0 && len(ep.perfs) == 0 {
		ep.close()
		return nil, fmt.Errorf("--events: the object has no ring buffer or perf event array; its maps are %s", om.names())
	}
	return ep, nil
}

func (ep *eventPrinter) close() {
	for _, r := range ep.rings {
		r.r.Close()
	}
	for _, p := range ep.perfs {
		p.r.Close()
	}
	if ep.kernel != nil {
		ep.kernel.close()
	}
}

// event is one line of --events --json.
type event struct {
	Packet int    `json:"packet"`
	Map    string `json:"map"`
	Type   string `json:"type"`
	CPU    *int   `json:"cpu,omitempty"`
	Data   string `json:"data,omitempty"`
	Lost   uint64 `json:"lost,omitempty"`
}

// drain prints every record waiting, attributed to packet.
func (ep *eventPrinter) drain(packet int) {
	for _, r := range ep.rings {
		r.r.SetDeadline(time.Now())
		for r.r.ReadInto(&ep.rec) == nil {
			ep.print(event{Packet: packet, Map: r.name, Type: "ringbuf", Data: hex.EncodeToString(ep.rec.RawSample)})
		}
	}
	for _, p := range ep.perfs {
		p.r.SetDeadline(time.Now())
		for p.r.ReadInto(&ep.prec) == nil {
			cpu := ep.prec.CPU
			ev := event{Packet: packet, Map: p.name, Type: "perf_event_array", CPU: &cpu, Lost: ep.prec.LostSamples}
			if ev.Lost == 0 {
				ev.Data = hex.EncodeToString(ep.prec.RawSample)
			}
			ep.print(ev)
		}
	}
	if ep.kernel != nil {
		ep.kernel.drain(ep, packet)
	}
}

func (ep *eventPrinter) print(ev event) {
	if ep.asJSON {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(ep.e.stdout, "%s\n", b)
		return
	}
	where := ev.Type
	if ev.CPU != nil {
		where = fmt.Sprintf("%s, CPU %d", ev.Type, *ev.CPU)
	}
	if ev.Lost > 0 {
		fmt.Fprintf(ep.e.stdout, "packet %d: %s (%s): %d samples lost\n", ev.Packet, ev.Map, where, ev.Lost)
		return
	}
	fmt.Fprintf(ep.e.stdout, "packet %d: %s (%s): %d bytes: %s\n", ev.Packet, ev.Map, where, len(ev.Data)/2, spaced(ev.Data))
}

// spaced groups hex digits by 4 bytes, as tcpdump -x does.
func spaced(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i += 8 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i:min(i+8, len(h))])
	}
	return b.String()
}

// indentJSON lays a compact document out for reading: one member per
// line, but arrays of numbers and strings (hex bytes) and short objects
// on one line.
func indentJSON(raw []byte) []byte {
	n, err := mapjson.ParseNode(raw)
	if err != nil {
		return raw
	}
	var b bytes.Buffer
	layout(&b, n, "")
	b.WriteByte('\n')
	return b.Bytes()
}

// layoutWidth is the longest object layout puts on one line.
const layoutWidth = 100

func layout(b *bytes.Buffer, n *mapjson.Node, indent string) {
	flat := flatJSON(n)
	if len(flat) <= layoutWidth || n.Kind != 'o' && !hasContainers(n) {
		b.Write(flat)
		return
	}
	in := indent + "  "
	if n.Kind == 'a' {
		b.WriteString("[\n")
		for i, it := range n.Items {
			b.WriteString(in)
			layout(b, it, in)
			if i < len(n.Items)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
		return
	}
	b.WriteString("{\n")
	for i, k := range n.Keys {
		b.WriteString(in)
		b.Write(quote(k))
		b.WriteString(": ")
		layout(b, n.Values[i], in)
		if i < len(n.Keys)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(indent + "}")
}

func hasContainers(n *mapjson.Node) bool {
	for _, it := range n.Items {
		if it.Kind == 'a' || it.Kind == 'o' {
			return true
		}
	}
	return false
}

// flatJSON writes n on one line, with a space after commas and colons.
func flatJSON(n *mapjson.Node) []byte {
	switch n.Kind {
	case 'o':
		b := []byte{'{'}
		for i, k := range n.Keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(append(b, quote(k)...), ": "...)
			b = append(b, flatJSON(n.Values[i])...)
		}
		return append(b, '}')
	case 'a':
		b := []byte{'['}
		for i, it := range n.Items {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, flatJSON(it)...)
		}
		return append(b, ']')
	case 's':
		return quote(n.Text)
	case 'n':
		return []byte(n.Text)
	case 'b':
		return []byte(fmt.Sprint(n.Bool))
	}
	return []byte("null")
}

// quote is a JSON string, with <, > and & as they are.
func quote(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
