// Package ciliumdp builds Cilium's datapath objects (bpf_lxc.o, bpf_host.o,
// bpf_overlay.o, bpf_xdp.o, bpf_sock.o, bpf_network.o, bpf_wireguard.o and
// the sockops objects of the releases that have them) from a bpf/ tree of
// any year, for tests that load them in waggle and in Linux and run them
// over the same frames.
//
// The build is the release's own: its bpf/Makefile and Makefile.bpf run
// with make, clang-19 and llc-19, with one configuration per object, the
// one that maxes out the program's features, as Cilium's verifier
// complexity test builds it (test/verifier: the make variable MAX_*_OPTIONS
// set to the first configuration of bpf/complexity-tests/netnext/OBJECT/,
// KERNEL=netnext); a release without complexity tests (v1.10) builds with
// its Makefile's own MAX_*_OPTIONS. The tree is copied into a work folder
// beside a minimal ../Makefile.defs (the repository's own one runs git, go
// and docker). Objects land in a folder named by a hash of every input (the
// tree's files, the compilers, this recipe), so a second run finds them.
// The sources are GPL-2.0/BSD-2: test input only, never copied into the
// repository, and neither are the objects.
package ciliumdp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/buildcache"
)

// recipe names this build recipe; changing the build changes it, and so
// the cache key.
const recipe = "ciliumdp/4: -Wno-error=GROUP retries shared by a tree's objects, make OBJECT.o KERNEL=netnext MACRO=<complexity-tests/netnext config> CLANG=clang-19 LLC=llc-19, stub Makefile.defs, a tree copy per job"

// WorkplaceEnv names the variable that says where the workplace's Cilium
// bpf/ tree is; WorkplaceDir is where it is looked for otherwise, beside
// the working directory or one of its parents.
const (
	WorkplaceEnv = "WAGGLE_CILIUM_BPF"
	WorkplaceDir = "shared/cilium-bpf"
)

// Workplace returns the workplace's Cilium bpf/ tree (2026's datapath),
// as bpftest finds it: $WAGGLE_CILIUM_BPF, else shared/cilium-bpf beside
// the working directory or one of its parents.
func Workplace() (string, bool) {
	if dir := os.Getenv(WorkplaceEnv); dir != "" {
		_, err := os.Stat(filepath.Join(dir, "bpf_lxc.c"))
		return dir, err == nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, WorkplaceDir)
		if _, err := os.Stat(filepath.Join(cand, "bpf_lxc.c")); err == nil {
			return cand, true
		}
		if filepath.Dir(dir) == dir {
			return "", false
		}
	}
}

// AllConfigsEnv names the variable that opts tests in to the full sets of
// Cilium's programs: set to 1, the tests build the workplace tree in every
// configuration (AllConfigs, 38 objects: a minute cold, cached after) and
// ask the kernel's verdict on each of their programs, and on each program
// of Cilium's unit tests.
const AllConfigsEnv = "WAGGLE_CILIUM_ALL"

// Tools are the programs a build needs.
var Tools = []string{"make", "clang-19", "llc-19", "nice"}

// Object is one datapath object of a tree and the configuration it is
// built with.
type Object struct {
	// Name is the object's name without .o: "bpf_lxc", "sockops/bpf_redir".
	Name string
	// Config is the number of the complexity-tests/netnext/OBJECT/N.txt
	// file the configuration comes from, 0 for any other source.
	Config int `json:",omitempty"`
	// Macro is the make variable the configuration is given through
	// (MAX_LXC_OPTIONS, ...); "" builds with the Makefile's own options.
	Macro string
	// Options are the configuration's compiler options (-DENABLE_IPV4=1
	// ...); nil leaves Macro's value to the Makefile.
	Options []string
	// From says where the configuration comes from: a complexity-tests
	// file, or the Makefile.
	From string
}

// Label names the object in its configuration: its Name, followed by
// ".N" for the complexity-tests file N.txt ("bpf_lxc.3").
func (o Object) Label() string {
	if o.Config == 0 {
		return o.Name
	}
	return fmt.Sprintf("%s.%d", o.Name, o.Config)
}

// objects are the datapath objects Cilium's verifier test builds, with the
// make variable that configures each.
var objects = []struct{ name, macro string }{
	{"bpf_lxc", "MAX_LXC_OPTIONS"},
	{"bpf_host", "MAX_HOST_OPTIONS"},
	{"bpf_overlay", "MAX_OVERLAY_OPTIONS"},
	{"bpf_xdp", "MAX_XDP_OPTIONS"},
	{"bpf_sock", "MAX_LB_OPTIONS"},
	{"bpf_network", "BPF_SIMPLE_OPTIONS"},
	{"bpf_wireguard", "MAX_WIREGUARD_OPTIONS"},
}

// Objects returns the objects of the bpf/ tree dir and their
// configurations: the first configuration of
// complexity-tests/netnext/OBJECT/ (v1.14 on: one N.txt file each, options
// one a line; v1.12: OBJECT.txt, one configuration a line), else the
// Makefile's own. Sockops objects (sockops/Makefile, until v1.13) build
// with their Makefile's options.
func Objects(dir string) ([]Object, error) {
	return objectsOf(dir, FirstConfig)
}

// Configs says which configurations of each object a build builds.
type Configs int

const (
	// FirstConfig builds each object once, in the first configuration
	// of complexity-tests/netnext/OBJECT/ (as Objects says): what
	// TestDatapath runs, 8 to 30 s for the workplace tree on two cores.
	FirstConfig Configs = iota
	// AllConfigs builds each object in every configuration of
	// complexity-tests/netnext/OBJECT/N.txt, as Cilium's verifier
	// complexity test loads them (38 objects for the workplace tree, a
	// minute cold on two idle cores). Objects whose tree has no
	// numbered configurations (v1.12's one file, the Makefile's) build
	// once, as with FirstConfig.
	AllConfigs
)

// AllObjects returns every configuration of every object of the bpf/ tree
// dir: one Object for each complexity-tests/netnext/OBJECT/N.txt, in the
// order of N, else what Objects returns for that object.
func AllObjects(dir string) ([]Object, error) {
	return objectsOf(dir, AllConfigs)
}

func objectsOf(dir string, configs Configs) ([]Object, error) {
	var out []Object
	for _, o := range objects {
		if _, err := os.Stat(filepath.Join(dir, o.name+".c")); err != nil {
			continue
		}
		obj := Object{Name: o.name, Macro: o.macro, From: "Makefile " + o.macro}
		ct := filepath.Join(dir, "complexity-tests", "netnext")
		files, _ := filepath.Glob(filepath.Join(ct, o.name, "*.txt"))
		sort.Slice(files, func(i, j int) bool { return configOrder(files[i]) < configOrder(files[j]) })
		switch {
		case len(files) > 0 && configs == AllConfigs:
			for _, f := range files {
				c, err := configFile(dir, f, obj)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			continue
		case len(files) > 0:
			c, err := configFile(dir, files[0], obj)
			if err != nil {
				return nil, err
			}
			obj = c
		default:
			f := filepath.Join(ct, o.name+".txt")
			data, err := os.ReadFile(f)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return nil, err
			}
			obj.From = filepath.ToSlash(must(filepath.Rel(dir, f)))
			for i, l := range strings.Split(string(data), "\n") {
				if fields := strings.Fields(l); len(fields) > 0 {
					obj.Options = fields
					obj.From += fmt.Sprintf(" line %d", i+1)
					break
				}
			}
		}
		if len(obj.Options) == 0 && obj.From != "Makefile "+o.macro {
			return nil, fmt.Errorf("%s: %s has no configuration", o.name, obj.From)
		}
		out = append(out, obj)
	}
	if _, err := os.Stat(filepath.Join(dir, "sockops", "Makefile")); err == nil {
		for _, s := range []string{"bpf_sockops", "bpf_redir"} {
			if _, err := os.Stat(filepath.Join(dir, "sockops", s+".c")); err == nil {
				out = append(out, Object{Name: "sockops/" + s, From: "sockops/Makefile"})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no datapath sources (bpf_lxc.c, ...)", dir)
	}
	return out, nil
}

// configFile is obj in the configuration of the complexity-tests file
// path (N.txt, options one a line).
func configFile(dir, path string, obj Object) (Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Object{}, err
	}
	obj.Options = strings.Fields(string(data))
	obj.From = filepath.ToSlash(must(filepath.Rel(dir, path)))
	obj.Config, _ = strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".txt"))
	if len(obj.Options) == 0 {
		return Object{}, fmt.Errorf("%s: %s has no configuration", obj.Name, obj.From)
	}
	return obj, nil
}

// configOrder sorts complexity-tests files by number: 2.txt before 10.txt.
func configOrder(path string) string {
	n := strings.TrimSuffix(filepath.Base(path), ".txt")
	return fmt.Sprintf("%08s", n)
}

func must(s string, err error) string {
	if err != nil {
		return ""
	}
	return s
}

// Typed is a program type and the attach type a program is loaded with.
type Typed struct {
	Type   ebpf.ProgramType
	Attach ebpf.AttachType
}

// DefaultType is the program type tc or ip link gives the programs of an
// object whose sections name none (the old releases' "from-container",
// every release's "2/7" tail calls).
func DefaultType(name string) ebpf.ProgramType {
	switch {
	case strings.HasPrefix(name, "sockops/"):
		return ebpf.UnspecifiedProgram
	case name == "bpf_xdp":
		return ebpf.XDP
	}
	return ebpf.SchedCLS
}

// sockSections are the types Cilium's loader gave the socket programs of
// v1.10, whose sections ("connect4") are not libbpf's ("cgroup/connect4"):
// it loaded them with bpftool, naming the type and attach type.
var sockSections = map[string]Typed{
	"connect4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect},
	"connect6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet6Connect},
	"bind4":        {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Bind},
	"bind6":        {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet6Bind},
	"post_bind4":   {ebpf.CGroupSock, ebpf.AttachCGroupInet4PostBind},
	"post_bind6":   {ebpf.CGroupSock, ebpf.AttachCGroupInet6PostBind},
	"sendmsg4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP4Sendmsg},
	"sendmsg6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP6Sendmsg},
	"recvmsg4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP4Recvmsg},
	"recvmsg6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP6Recvmsg},
	"getpeername4": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet4GetPeername},
	"getpeername6": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet6GetPeername},
}

// SectionTypes are the types an object's loader gives sections libbpf does
// not know, by section; nil for none.
func SectionTypes(name string) map[string]Typed {
	if name == "bpf_sock" {
		return maps.Clone(sockSections)
	}
	return nil
}

// Built is an object a build made.
type Built struct {
	Object
	// Path is the object file.
	Path string
	// NoError are the warning groups -Werror made errors with clang-19
	// that the build made warnings again (-Wno-error=GROUP).
	NoError []string `json:",omitempty"`
}

// Result is a build's outcome.
type Result struct {
	// Dir holds the objects.
	Dir string
	// Objects are the objects built, in the order of Objects.
	Objects []Built
	// Failed maps the objects that did not build to the compiler's
	// message.
	Failed map[string]string
	// Cached reports that the objects came from an earlier build.
	Cached bool
	// Took is how long the build took (the first one, when Cached).
	Took string
}

// manifest is what a finished build leaves beside its objects.
type manifest struct {
	Objects []Built
	Failed  map[string]string
	Took    string
}

// Key returns the cache key of a build of the tree dir: a hash of its
// files, the compilers, the CPU count (Makefile.bpf passes
// -D__NR_CPUS__=$(nproc)) and this recipe.
func Key(dir string) (string, error) { return key(dir, FirstConfig) }

// key is Key for a build of the given configurations.
func key(dir string, configs Configs) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, recipe)
	if configs == AllConfigs {
		fmt.Fprintln(h, "every configuration")
	}
	fmt.Fprintln(h, runtime.NumCPU())
	for _, tool := range []string{"clang-19", "llc-19"} {
		out, err := exec.Command(tool, "--version").Output()
		if err != nil {
			return "", fmt.Errorf("%s --version: %w", tool, err)
		}
		h.Write(out)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\n", rel)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// Find checks the tools a build needs; its error names the missing ones.
func Find() error {
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tools missing: %s (apt-get install clang-19 llvm-19 make)", strings.Join(missing, ", "))
	}
	return nil
}

// Build returns the objects of the bpf/ tree dir, from cacheRoot if a build
// with the same inputs finished there, else building them with jobs
// objects at a time (0: 2), each compiler at nice 10. logf reports
// progress. An object the compiler refuses is in Result.Failed, not an
// error. It builds each object in its first configuration (FirstConfig).
func Build(ctx context.Context, dir, cacheRoot string, jobs int, logf func(format string, args ...any)) (*Result, error) {
	return BuildConfigs(ctx, dir, cacheRoot, FirstConfig, jobs, logf)
}

// BuildConfigs is Build of the given configurations. With AllConfigs an
// object's file is named by its configuration: bpf_lxc.3.o for
// complexity-tests/netnext/bpf_lxc/3.txt. A cold AllConfigs build of the
// workplace tree (38 objects) took 59 s on two idle cores; it is cached
// like Build's, under its own key.
func BuildConfigs(ctx context.Context, dir, cacheRoot string, configs Configs, jobs int, logf func(format string, args ...any)) (*Result, error) {
	if err := Find(); err != nil {
		return nil, err
	}
	objs, err := objectsOf(dir, configs)
	if err != nil {
		return nil, err
	}
	key, err := key(dir, configs)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(cacheRoot, key)
	if r, err := load(out); err == nil {
		r.Cached = true
		return r, nil
	}
	if jobs <= 0 {
		jobs = 2
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(cacheRoot, key+".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	m, err := build(ctx, dir, work, objs, configs, jobs, logf)
	if err != nil {
		return nil, err
	}
	m.Took = time.Since(start).Round(time.Millisecond).String()
	if err := buildcache.Publish(filepath.Join(work, "objs"), out, m); err != nil {
		return nil, err
	}
	return load(out)
}

// load reads a finished build.
func load(dir string) (*Result, error) {
	var m manifest
	if err := buildcache.Load(dir, &m); err != nil {
		return nil, err
	}
	r := &Result{Dir: dir, Failed: m.Failed, Took: m.Took}
	for _, b := range m.Objects {
		b.Path = filepath.Join(dir, filepath.Base(b.Path))
		if _, err := os.Stat(b.Path); err != nil {
			return nil, err
		}
		r.Objects = append(r.Objects, b)
	}
	return r, nil
}

// defs stands for the repository's Makefile.defs: what bpf/Makefile and
// Makefile.bpf take from it.
const defs = `ROOT_DIR := %s
RELATIVE_DIR := $(shell echo $(realpath .) | sed "s;$(ROOT_DIR)[/]*;;")
QUIET :=
ECHO_CC := true
ECHO_CHECK := true
ECHO_CLEAN := true
ECHO_GEN := true
`

func build(ctx context.Context, dir, work string, objs []Object, configs Configs, jobs int, logf func(string, ...any)) (*manifest, error) {
	t := time.Now()
	// Every job builds in a copy of its own: make writes OBJECT.o into
	// the tree, and two configurations of one object may build at once.
	trees := make([]string, jobs)
	for j := range trees {
		src := filepath.Join(work, "src")
		if j > 0 {
			src += strconv.Itoa(j)
		}
		trees[j] = filepath.Join(src, "bpf")
		if err := copyTree(dir, trees[j]); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(src, "Makefile.defs"), fmt.Appendf(nil, defs, src), 0o644); err != nil {
			return nil, err
		}
	}
	objDir := filepath.Join(work, "objs")
	if err := os.Mkdir(objDir, 0o755); err != nil {
		return nil, err
	}
	m := &manifest{Failed: map[string]string{}}
	built := make([]*Built, len(objs))
	groups := &warningGroups{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int)
	for j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				b, err := buildObject(ctx, trees[j], objDir, objs[i], configs == AllConfigs, groups)
				mu.Lock()
				if err != nil {
					m.Failed[objs[i].Label()] = err.Error()
				} else {
					built[i] = b
				}
				mu.Unlock()
			}
		}()
	}
	for i := range objs {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, b := range built {
		if b != nil {
			m.Objects = append(m.Objects, *b)
		}
	}
	if logf != nil {
		logf("built %d of %d objects of %s in %v", len(m.Objects), len(objs), dir, time.Since(t).Round(time.Millisecond))
	}
	return m, nil
}

// buildObject runs the release's make for one object, as Cilium's verifier
// test does, and moves the object to objDir. clang-19 warns where the
// compilers of the release's time did not (-Wshorten-64-to-32 joined
// -Wimplicit-int-conversion, -Wunused-but-set-variable came), and the
// release's flags make warnings errors: a warning group that stops the
// build is made a warning again (-Wno-error=GROUP) and the build retried,
// at most a few times; the groups are in Built.NoError.
//
// The groups one object needed are shared with the objects of the tree not
// yet started (groups), which start with them: the sources share their
// headers, and every retry is a whole compile.
//
// byConfig names the object's file by its configuration (Label).
func buildObject(ctx context.Context, tree, objDir string, o Object, byConfig bool, groups *warningGroups) (*Built, error) {
	mk := filepath.Join(tree, filepath.Dir(o.Name))
	target := filepath.Base(o.Name) + ".o"
	noError := groups.get()
	for attempt := 0; ; attempt++ {
		clang := "CLANG=clang-19"
		for _, g := range noError {
			clang += " -Wno-error=" + g
		}
		args := []string{"-n", "10", "make", "-s", "-C", mk, "KERNEL=netnext", clang, "LLC=llc-19", "V=0"}
		if o.Macro != "" && o.Options != nil {
			args = append(args, o.Macro+"="+strings.Join(o.Options, " "))
		}
		cmd := exec.CommandContext(ctx, "nice", append(args, target)...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stdout = io.Discard
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			break
		}
		var more []string
		for _, m := range werror.FindAllStringSubmatch(stderr.String(), -1) {
			if !slices.Contains(noError, m[1]) && !slices.Contains(more, m[1]) {
				more = append(more, m[1])
			}
		}
		if len(more) == 0 || attempt == 3 || ctx.Err() != nil {
			return nil, fmt.Errorf("make %s: %w: %s", target, err, compilerError(stderr.String()))
		}
		noError = append(noError, more...)
		groups.add(more)
	}
	name := strings.ReplaceAll(o.Name, "/", "_") + ".o"
	if byConfig {
		name = strings.ReplaceAll(o.Label(), "/", "_") + ".o"
	}
	path := filepath.Join(objDir, name)
	if err := os.Rename(filepath.Join(mk, target), path); err != nil {
		return nil, err
	}
	return &Built{Object: o, Path: path, NoError: noError}, nil
}

// warningGroups are the warning groups a build made warnings again.
type warningGroups struct {
	mu     sync.Mutex
	groups []string
}

func (w *warningGroups) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.groups)
}

func (w *warningGroups) add(groups []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range groups {
		if !slices.Contains(w.groups, g) {
			w.groups = append(w.groups, g)
		}
	}
}

// werror matches a warning that -Werror made an error.
var werror = regexp.MustCompile(`\[-Werror,-W([a-zA-Z0-9_-]+)\]`)

// compilerError keeps the compiler's first error line and what follows it,
// bounded.
func compilerError(s string) string {
	if i := strings.Index(s, "error:"); i >= 0 {
		if j := strings.LastIndexByte(s[:i], '\n'); j >= 0 {
			s = s[j+1:]
		} else {
			s = s[:]
		}
	}
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

// copyTree copies the regular files and folders of src to dst, writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
}
