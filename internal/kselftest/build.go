package kselftest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/waggle-bpf/waggle/internal/buildcache"
)

// recipe names this build recipe; changing the build changes it, and so
// the cache key.
const recipe = "kselftest/4: progs/verifier_*.c, progs/test_global_func*.c, progs/dynptr_fail.c and progs/user_ringbuf_fail.c, tools/lib/bpf headers + bpf_doc helpers, vmlinux.h from BTF, -mcpu=v3; verifier/*.c dumped"

// Source is what a build reads.
type Source struct {
	// Tarball is Debian's linux-source tarball,
	// /usr/src/linux-source-6.12.tar.xz.
	Tarball string
	// BTF is the kernel BTF vmlinux.h is generated from (the running
	// kernel's, /sys/kernel/btf/vmlinux).
	BTF string
}

// Tools are the programs a build needs.
var Tools = []string{"tar", "xz", "python3", "clang-19", "bpftool"}

// Find locates Debian's linux-source-6.12 and the running kernel's BTF and
// checks the tools; its error says what is missing.
func Find() (Source, error) {
	src := Source{Tarball: "/usr/src/linux-source-6.12.tar.xz", BTF: "/sys/kernel/btf/vmlinux"}
	if _, err := os.Stat(src.Tarball); err != nil {
		return src, fmt.Errorf("kernel source: %w (apt-get install linux-source-6.12)", err)
	}
	if _, err := os.Stat(src.BTF); err != nil {
		return src, fmt.Errorf("kernel BTF: %w", err)
	}
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return src, fmt.Errorf("tools missing: %s (apt-get install clang-19 bpftool python3 xz-utils)", strings.Join(missing, ", "))
	}
	return src, nil
}

// Key returns the cache key of a build of src: a hash of the inputs.
func Key(src Source) (string, error) {
	return buildcache.Key(recipe, src.Tarball, src.BTF)
}

// manifest is what a finished build leaves beside its objects.
type manifest struct {
	// Sources are the verifier_*.c, test_global_func*.c and dynptr
	// files tried, sorted.
	Sources []string
	// Failed maps the sources that did not compile to the compiler's
	// first error.
	Failed map[string]string
	// RawErr is why the older verifier/*.c tests were not dumped.
	RawErr string
	Took   string
}

// objects is the outcome of a build: the folder of objects and the
// manifest.
type objects struct {
	dir    string
	m      manifest
	cached bool
}

// buildObjects returns the objects of src, from cacheRoot if a build with
// the same inputs finished there, else building them.
func buildObjects(ctx context.Context, src Source, cacheRoot string, logf func(string, ...any)) (*objects, error) {
	key, err := Key(src)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheRoot, key)
	var m manifest
	if err := buildcache.Load(dir, &m); err == nil {
		return &objects{dir: dir, m: m, cached: true}, nil
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
	b := &builder{ctx: ctx, src: src, work: work, logf: logf}
	bm, err := b.build()
	if err != nil {
		return nil, err
	}
	bm.Took = time.Since(start).Round(time.Millisecond).String()
	if err := buildcache.Publish(b.objs, dir, bm); err != nil {
		return nil, err
	}
	if err := buildcache.Load(dir, &m); err != nil {
		return nil, err
	}
	return &objects{dir: dir, m: m}, nil
}

type builder struct {
	ctx  context.Context
	src  Source
	work string
	tree string // the extracted part of the kernel tree
	inc  string // the libbpf headers and vmlinux.h, as INCLUDE_DIR
	objs string // where objects go
	logf func(string, ...any)
}

func (b *builder) log(format string, args ...any) {
	if b.logf != nil {
		b.logf(format, args...)
	}
}

// run runs a command in dir, returning its standard output; the error
// carries the command's standard error.
func (b *builder) run(dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 4000 {
			msg = msg[:4000] + "..."
		}
		return nil, fmt.Errorf("%s: %w\n%s", name, err, msg)
	}
	return stdout.Bytes(), nil
}

// treeName is the top directory of the tarball: linux-source-6.12.
func treeName(tarball string) string {
	base := filepath.Base(tarball)
	for _, ext := range []string{".tar.xz", ".tar.gz", ".tar.bz2", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

// selftests is the selftests' folder in the tree.
const selftests = "tools/testing/selftests/bpf"

// extracted are the parts of the tree the build needs, as tar wildcards
// below the top folder.
var extracted = []string{
	selftests + "/progs/verifier_*.c",
	selftests + "/progs/test_global_func*.c",
	selftests + "/progs/dynptr_fail.c",
	selftests + "/progs/user_ringbuf_fail.c",
	selftests + "/progs/*.h",
	selftests + "/*.h",
	selftests + "/verifier/*.c",
	selftests + "/test_verifier.c",
	"tools/arch/x86/include/*",
	"tools/include/*",
	"tools/lib/bpf/*.h",
	"scripts/bpf_doc.py",
	"include/uapi/linux/bpf.h",
}

// libbpfHeaders are the headers the selftests Makefile installs into
// INCLUDE_DIR/bpf for BPF programs (besides the generated
// bpf_helper_defs.h). Debian 12's libbpf-dev (1.1) is too old for the 6.12
// selftests (no bpf_for, __arg_ctx, ...), so the tree's own are used.
var libbpfHeaders = []string{"bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h", "bpf_endian.h"}

func (b *builder) build() (*manifest, error) {
	top := treeName(b.src.Tarball)
	b.tree = filepath.Join(b.work, top)
	b.inc = filepath.Join(b.work, "include")
	b.objs = filepath.Join(b.work, "objs")
	for _, d := range []string{b.objs, filepath.Join(b.inc, "bpf")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	t := time.Now()
	args := []string{"-xJf", b.src.Tarball, "-C", b.work, "--wildcards"}
	for _, e := range extracted {
		args = append(args, top+"/"+e)
	}
	if _, err := b.run(b.work, "tar", args...); err != nil {
		return nil, err
	}
	b.log("kselftest: extracted %s in %v", b.src.Tarball, time.Since(t).Round(time.Millisecond))
	for _, h := range libbpfHeaders {
		data, err := os.ReadFile(filepath.Join(b.tree, "tools/lib/bpf", h))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(b.inc, "bpf", h), data, 0o644); err != nil {
			return nil, err
		}
	}
	defs, err := b.run(b.tree, "python3", "scripts/bpf_doc.py", "--header", "--file", "include/uapi/linux/bpf.h", "helpers")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.inc, "bpf", "bpf_helper_defs.h"), defs, 0o644); err != nil {
		return nil, err
	}
	vmlinux, err := b.run(b.work, "bpftool", "btf", "dump", "file", b.src.BTF, "format", "c")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.inc, "vmlinux.h"), vmlinux, 0o644); err != nil {
		return nil, err
	}
	sys, err := b.sysIncludes()
	if err != nil {
		return nil, err
	}
	srcs, err := filepath.Glob(filepath.Join(b.tree, selftests, "progs", "verifier_*.c"))
	if err != nil {
		return nil, err
	}
	// The global functions' tests (prog_tests/test_global_funcs.c runs
	// them with test_loader, as verifier.c runs verifier_*.c).
	globals, err := filepath.Glob(filepath.Join(b.tree, selftests, "progs", "test_global_func*.c"))
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, globals...)
	// The dynptr tests that prog_tests/dynptr.c and user_ringbuf.c run
	// with test_loader (RUN_TESTS).
	for _, f := range []string{"dynptr_fail.c", "user_ringbuf_fail.c"} {
		if p := filepath.Join(b.tree, selftests, "progs", f); fileExists(p) {
			srcs = append(srcs, p)
		}
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("%s: no %s/progs/verifier_*.c", b.src.Tarball, selftests)
	}
	sort.Strings(srcs)
	m := &manifest{Failed: map[string]string{}}
	for _, s := range srcs {
		m.Sources = append(m.Sources, filepath.Base(s))
	}
	t = time.Now()
	var mu sync.Mutex
	ch := make(chan string)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				if err := b.compile(s, sys); err != nil {
					mu.Lock()
					m.Failed[filepath.Base(s)] = firstError(err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for _, s := range srcs {
		ch <- s
	}
	close(ch)
	wg.Wait()
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	b.log("kselftest: compiled %d files (%d failed) in %v", len(srcs), len(m.Failed), time.Since(t).Round(time.Millisecond))
	t = time.Now()
	if err := b.dumpRaw(); err != nil {
		if b.ctx.Err() != nil {
			return nil, b.ctx.Err()
		}
		m.RawErr = err.Error()
	}
	b.log("kselftest: dumped test_verifier's tests in %v (error: %q)", time.Since(t).Round(time.Millisecond), m.RawErr)
	return m, nil
}

// firstError is the first line of a compiler's output that says "error",
// else its first line.
func firstError(msg string) string {
	lines := strings.Split(msg, "\n")
	for _, l := range lines {
		if strings.Contains(l, "error") && strings.Contains(l, ": ") && !strings.HasPrefix(l, "clang-19: exit") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[0])
}

// sysIncludes are clang's own include directories (the Makefile's
// get_sys_includes), as -idirafter options.
func (b *builder) sysIncludes() ([]string, error) { return buildcache.ClangSysIncludes(b.ctx) }

// compile is the Makefile's CLANG_BPF_BUILD_RULE with test_progs'
// TRUNNER_BPF_CFLAGS: BPF_CFLAGS (-Werror left out: clang-19 warns where
// the selftests' own clang did not) and -DENABLE_ATOMICS_TESTS.
func (b *builder) compile(src string, sys []string) error {
	sdir := filepath.Join(b.tree, selftests)
	obj := filepath.Join(b.objs, strings.TrimSuffix(filepath.Base(src), ".c")+".o")
	args := []string{"-g", "-Wall", "-D__TARGET_ARCH_x86", "-mlittle-endian",
		"-I" + b.inc, "-I" + sdir, "-I" + filepath.Join(b.tree, "tools/include/uapi"),
		"-Wno-compare-distinct-pointer-types"}
	args = append(args, sys...)
	args = append(args, "-DENABLE_ATOMICS_TESTS", "-O2", "--target=bpf", "-mcpu=v3",
		"-ffile-prefix-map="+b.tree+"=linux", "-c", src, "-o", obj)
	_, err := b.run(sdir, "clang-19", args...)
	return err
}

// fileExists reports whether path names a file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
