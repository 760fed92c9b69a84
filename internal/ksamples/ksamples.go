// Package ksamples builds the Linux kernel's own eBPF examples
// (samples/bpf: the *_kern.c and *.bpf.c programs) from Debian's
// linux-source package into a cache folder, for tests that load and run
// the very objects in waggle and in Linux.
//
// The build follows samples/bpf/Makefile: the kernel tree is configured
// with Debian's configuration and prepared (generated headers), libbpf's
// bpf_helper_defs.h is generated, the *_kern.c programs go through the
// Makefile's native-target pipeline (clang to LLVM IR, opt, llc for BPF)
// and the *.bpf.c programs are compiled for BPF against the running
// kernel's BTF (vmlinux.h, as the Makefile's VMLINUX_BTF makes it).
// Objects land in a folder named by a hash of every input (the source
// tarball, the configuration, the compiler, the BTF, this recipe), so a
// second run finds them; the kernel tree is removed after the build.
package ksamples

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/waggle-bpf/waggle/internal/buildcache"
)

// recipe names this build recipe; changing the build changes it, and so
// the cache key.
const recipe = "ksamples/2: olddefconfig+prepare, bpf_doc helpers, syscall_nrs.h, kern pipeline, bpf.c against running BTF"

// Source is the kernel source and configuration to build from.
type Source struct {
	Tarball string // /usr/src/linux-source-6.12.tar.xz
	Config  string // /usr/src/linux-config-6.12/config.amd64_none_amd64.xz
	// BTF is the kernel BTF the *.bpf.c programs are compiled against;
	// "" leaves them out.
	BTF string
}

// Tools are the programs a build needs.
var Tools = []string{"tar", "xz", "make", "gcc", "flex", "bison", "bc", "python3", "clang-19", "opt-19", "llvm-dis-19", "llc-19"}

// Find locates Debian's linux-source-6.12 and linux-config-6.12 and the
// running kernel's BTF, and checks the tools; its error says what is
// missing (install linux-source-6.12 linux-config-6.12 clang-19 llvm-19
// bpftool make gcc flex bison bc python3 libelf-dev).
func Find() (Source, error) {
	src := Source{
		Tarball: "/usr/src/linux-source-6.12.tar.xz",
		Config:  "/usr/src/linux-config-6.12/config.amd64_none_amd64.xz",
	}
	for _, f := range []string{src.Tarball, src.Config} {
		if _, err := os.Stat(f); err != nil {
			return src, fmt.Errorf("kernel source: %w (apt-get install linux-source-6.12 linux-config-6.12)", err)
		}
	}
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return src, fmt.Errorf("tools missing: %s", strings.Join(missing, ", "))
	}
	if _, err := exec.LookPath("bpftool"); err == nil {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
			src.BTF = "/sys/kernel/btf/vmlinux"
		}
	}
	return src, nil
}

// Result is a build's outcome.
type Result struct {
	// Dir holds the objects.
	Dir string
	// Objects are the object files built, sorted.
	Objects []string
	// Failed maps the sources that did not compile to the compiler's
	// message.
	Failed map[string]string
	// Sources counts the programs tried.
	Sources int
	// Cached reports that the objects came from an earlier build.
	Cached bool
}

// manifest is what a finished build leaves beside its objects.
type manifest struct {
	Sources int
	Failed  map[string]string
	Took    string
}

// Key returns the cache key of a build of src: a hash of the inputs.
func Key(src Source) (string, error) {
	return buildcache.Key(recipe, src.Tarball, src.Config, src.BTF)
}

// Build returns the objects of src's samples/bpf, from cacheRoot if a build
// with the same inputs finished there, else building them (logf reports
// progress). jobs is the parallelism of the build (0: the CPUs).
func Build(ctx context.Context, src Source, cacheRoot string, jobs int, logf func(format string, args ...any)) (*Result, error) {
	key, err := Key(src)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheRoot, key)
	if r, err := load(dir); err == nil {
		r.Cached = true
		return r, nil
	}
	if jobs <= 0 {
		jobs = runtime.NumCPU()
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
	b := &builder{ctx: ctx, src: src, work: work, jobs: jobs, logf: logf}
	m, err := b.build()
	if err != nil {
		return nil, err
	}
	m.Took = time.Since(start).Round(time.Second).String()
	if err := buildcache.Publish(b.objs, dir, m); err != nil {
		return nil, err
	}
	return load(dir)
}

// load reads a finished build.
func load(dir string) (*Result, error) {
	var m manifest
	if err := buildcache.Load(dir, &m); err != nil {
		return nil, err
	}
	objs, err := filepath.Glob(filepath.Join(dir, "*.o"))
	if err != nil {
		return nil, err
	}
	sort.Strings(objs)
	return &Result{Dir: dir, Objects: objs, Failed: m.Failed, Sources: m.Sources}, nil
}

type builder struct {
	ctx  context.Context
	src  Source
	work string
	tree string // the kernel tree
	objs string // where objects go
	jobs int
	logf func(string, ...any)
}

func (b *builder) log(format string, args ...any) {
	if b.logf != nil {
		b.logf(format, args...)
	}
}

// run runs a command in dir, returning its standard output; the error
// carries the command's standard error.
func (b *builder) run(dir string, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "LC_ALL=C", "KBUILD_OUTPUT=", "ARCH=x86_64")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// treeName is the top directory of the tarball: linux-source-6.12.
func (b *builder) treeName() string {
	base := filepath.Base(b.src.Tarball)
	for _, ext := range []string{".tar.xz", ".tar.gz", ".tar.bz2", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

func (b *builder) build() (*manifest, error) {
	top := b.treeName()
	b.tree = filepath.Join(b.work, top)
	b.objs = filepath.Join(b.work, "objs")
	if err := os.Mkdir(b.objs, 0o755); err != nil {
		return nil, err
	}
	// The parts of the tree a prepared tree and samples/bpf need: every
	// Kconfig and Makefile, x86, include, scripts, kernel, tools' headers;
	// not the bulk of the drivers, file systems, networking and other
	// architectures' sources.
	t := time.Now()
	excl := []string{
		"Documentation/*/*", "drivers/*.[chS]", "sound/*.[ch]", "fs/*.[ch]", "net/*.[ch]",
		"arch/[!x]*/*.[chS]", "arch/[!x]*/*.dts*", "tools/perf", "tools/testing/selftests/[!b]*",
		"lib/*.[ch]", "crypto/*.[ch]", "rust",
	}
	args := []string{"-xJf", b.src.Tarball, "-C", b.work, "--wildcards"}
	for _, e := range excl {
		args = append(args, "--exclude="+top+"/"+e)
	}
	if _, err := b.run(b.work, nil, "tar", args...); err != nil {
		return nil, err
	}
	b.log("extracted %s in %v", b.src.Tarball, time.Since(t).Round(time.Millisecond))
	t = time.Now()
	cfg, err := b.run(b.work, nil, "xz", "-dc", b.src.Config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.tree, ".config"), cfg, 0o644); err != nil {
		return nil, err
	}
	if _, err := b.run(b.tree, nil, "make", "-s", "olddefconfig"); err != nil {
		return nil, err
	}
	if _, err := b.run(b.tree, nil, "make", "-s", fmt.Sprintf("-j%d", b.jobs), "prepare"); err != nil {
		return nil, err
	}
	b.log("configured and prepared the tree in %v", time.Since(t).Round(time.Millisecond))
	defs, err := b.run(b.tree, nil, "python3", "scripts/bpf_doc.py", "--header", "--file", "include/uapi/linux/bpf.h", "helpers")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.tree, "tools/lib/bpf/bpf_helper_defs.h"), defs, 0o644); err != nil {
		return nil, err
	}
	samples := filepath.Join(b.tree, "samples/bpf")
	if b.src.BTF != "" {
		h, err := b.run(b.tree, nil, "bpftool", "btf", "dump", "file", b.src.BTF, "format", "c")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(samples, "vmlinux.h"), h, 0o644); err != nil {
			return nil, err
		}
	}
	if err := b.syscallNrs(samples); err != nil {
		return nil, err
	}
	kern, _ := filepath.Glob(filepath.Join(samples, "*_kern.c"))
	var bpfc []string
	if b.src.BTF != "" {
		bpfc, _ = filepath.Glob(filepath.Join(samples, "*.bpf.c"))
	}
	m := &manifest{Failed: map[string]string{}}
	type job struct {
		src string
		fn  func(string) error
	}
	var jobs []job
	for _, s := range kern {
		jobs = append(jobs, job{s, b.compileKern})
	}
	for _, s := range bpfc {
		jobs = append(jobs, job{s, b.compileBPF})
	}
	m.Sources = len(jobs)
	t = time.Now()
	var mu sync.Mutex
	ch := make(chan job)
	var wg sync.WaitGroup
	for range b.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := j.fn(j.src); err != nil {
					mu.Lock()
					m.Failed[filepath.Base(j.src)] = err.Error()
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	b.log("compiled %d programs (%d failed) in %v", len(jobs), len(m.Failed), time.Since(t).Round(time.Millisecond))
	return m, nil
}

// sysIncludes are clang's own include directories (the Makefile's
// get_sys_includes), as -idirafter options.
func (b *builder) sysIncludes() ([]string, error) { return buildcache.ClangSysIncludes(b.ctx) }

// kernelFlags are the Makefile's flags for programs that include kernel
// headers (NOSTDINC_FLAGS, LINUXINCLUDE and the samples' own).
func (b *builder) kernelFlags() ([]string, error) {
	s := b.tree
	sys, err := b.sysIncludes()
	if err != nil {
		return nil, err
	}
	flags := []string{"-nostdinc",
		"-I" + s + "/arch/x86/include", "-I" + s + "/arch/x86/include/generated",
		"-I" + s + "/include", "-I" + s + "/arch/x86/include/uapi",
		"-I" + s + "/arch/x86/include/generated/uapi", "-I" + s + "/include/uapi",
		"-I" + s + "/include/generated/uapi", "-include", s + "/include/linux/kconfig.h",
		"-I" + s + "/samples/bpf", "-I" + s + "/tools/testing/selftests/bpf/", "-I" + s + "/tools/lib",
	}
	flags = append(flags, sys...)
	return append(flags, "-D__KERNEL__", "-D__BPF_TRACING__", "-Wno-unused-value", "-Wno-pointer-sign",
		"-D__TARGET_ARCH_x86", "-Wno-compare-distinct-pointer-types",
		"-Wno-gnu-variable-sized-type-not-at-end", "-Wno-address-of-packed-member",
		"-Wno-tautological-compare", "-Wno-unknown-warning-option", "-fno-asynchronous-unwind-tables",
		"-include", "asm_goto_workaround.h", "-fno-stack-protector", "-g", "-O2"), nil
}

// compileKern is the Makefile's rule for *_kern.c: clang to LLVM IR for
// the host, opt, llvm-dis, llc for BPF.
func (b *builder) compileKern(src string) error {
	flags, err := b.kernelFlags()
	if err != nil {
		return err
	}
	dir := filepath.Dir(src)
	ir, err := b.run(dir, nil, "clang-19", append(flags, "-emit-llvm", "-Xclang", "-disable-llvm-passes", "-c", src, "-o", "-")...)
	if err != nil {
		return err
	}
	opt, err := b.run(dir, bytes.NewReader(ir), "opt-19", "-O2", "-mtriple=bpf-pc-linux")
	if err != nil {
		return err
	}
	ll, err := b.run(dir, bytes.NewReader(opt), "llvm-dis-19")
	if err != nil {
		return err
	}
	obj := filepath.Join(b.objs, strings.TrimSuffix(filepath.Base(src), ".c")+".o")
	_, err = b.run(dir, bytes.NewReader(ll), "llc-19", "-march=bpf", "-filetype=obj", "-o", obj)
	return err
}

// compileBPF is the Makefile's rule for *.bpf.c.
func (b *builder) compileBPF(src string) error {
	s := b.tree
	sys, err := b.sysIncludes()
	if err != nil {
		return err
	}
	obj := filepath.Join(b.objs, strings.TrimSuffix(filepath.Base(src), ".c")+".o")
	args := []string{"-g", "-O2", "--target=bpf", "-D__TARGET_ARCH_x86", "-Wno-compare-distinct-pointer-types",
		"-I" + s + "/include", "-I" + s + "/samples/bpf", "-I" + s + "/tools/include", "-I" + s + "/tools/lib"}
	args = append(args, sys...)
	_, err = b.run(filepath.Dir(src), nil, "clang-19", append(args, "-c", src, "-o", obj)...)
	return err
}

// offsetLine matches what Kbuild's sed-offsets turns into a #define: the
// .ascii "->NAME VALUE COMMENT" lines that DEFINE() leaves in assembly.
var offsetLine = regexp.MustCompile(`^\s*\.ascii\s*"->([A-Za-z_][A-Za-z0-9_]*) [$#]*([^ "]+)`)

// syscallNrs makes samples/bpf/syscall_nrs.h, which tracex5 includes, as
// the Makefile does: syscall_nrs.c compiled to assembly, its DEFINE()
// markers turned into #defines (filechk_offsets).
func (b *builder) syscallNrs(samples string) error {
	all, err := b.kernelFlags()
	if err != nil {
		return err
	}
	// Without asm_goto_workaround.h, which empties asm volatile: Kbuild
	// compiles syscall_nrs.s with the kernel's own flags.
	var flags []string
	for i := 0; i < len(all); i++ {
		if all[i] == "-include" && i+1 < len(all) && all[i+1] == "asm_goto_workaround.h" {
			i++
			continue
		}
		flags = append(flags, all[i])
	}
	asm, err := b.run(samples, nil, "clang-19", append(flags, "-S", "syscall_nrs.c", "-o", "-")...)
	if err != nil {
		return err
	}
	var out strings.Builder
	out.WriteString("#ifndef __SYSCALL_NRS_H__\n#define __SYSCALL_NRS_H__\n")
	n := 0
	for _, l := range strings.Split(string(asm), "\n") {
		if m := offsetLine.FindStringSubmatch(l); m != nil {
			fmt.Fprintf(&out, "#define %s %s\n", m[1], m[2])
			n++
		}
	}
	out.WriteString("#endif\n")
	if n == 0 {
		return errors.New("syscall_nrs.c: no DEFINE() markers in its assembly")
	}
	return os.WriteFile(filepath.Join(samples, "syscall_nrs.h"), []byte(out.String()), 0o644)
}
