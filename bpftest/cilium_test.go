package bpftest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/bpftest"
	"github.com/waggle-bpf/waggle/kernel"
)

// Cilium's BPF unit tests (bpf/tests/*.c of github.com/cilium/cilium) are
// built from the workplace's copy of Cilium's bpf/ tree, never from a copy
// in this repository: the tree is GPL-2.0/BSD-2 and is test input only.
const (
	// ciliumEnv overrides where the tree is.
	ciliumEnv = "WAGGLE_CILIUM_BPF"
	// ciliumDir is where the tree is looked for: in a folder "shared"
	// beside the repository or beside one of its parents.
	ciliumDir = "shared/cilium-bpf"
	clang     = "clang-19"
	llc       = "llc-19"
	python    = "/usr/bin/python3" // Debian's, with python3-scapy and python3-jinja2
)

// ciliumFlags are the flags Cilium's tests build with (its README),
// with __throw_build_bug() defined away: Cilium's own LLVM folds that
// compile-time trap, clang-19 cannot.
var ciliumFlags = []string{
	"-I..", "-I../include", "-g", "-O2", "--target=bpf", "-std=gnu99", "-nostdinc",
	"-Wall", "-Wno-address-of-packed-member", "-Wno-unknown-warning-option",
	"-Wno-gnu-variable-sized-type-not-at-end", "-mcpu=v3",
	"-D__throw_build_bug()=((void)0)",
}

// knownDiffs are the cases that fail in waggle though they pass in the
// kernel, by object and a regexp of case names, with the cause. A case
// listed here that passes fails the test, so that the list only ever holds
// real differences.
var knownDiffs = []struct {
	object, cases, cause string
}{
	// The unrolled memcmp check explores more states in waggle's verifier
	// than in Linux's (988,381 processed instructions) and reaches the
	// 1,000,000-instruction budget. The whole test body is one bounded
	// loop (a back edge from its end to insn 11); comparing checkpoints
	// exactly inside it doubled the paths at each of its 0/1-flag
	// diamonds (13,076 visits of an instruction Linux visits 29 times).
	// Since that is gone, waggle's visits per instruction are within a
	// few percent of Linux's, mostly fewer, but some conditional jumps
	// still prune fewer arrivals (insn 6689: Linux 6 of 16, waggle 1)
	// and the total ends just past the budget.
	{"builtins.o", "builtin_memcmp", "waggle's verifier reaches the 1,000,000-instruction budget where Linux's processes 988,381"},
}

// kernelFails are the cases that fail in the kernel as in waggle, by
// object and a regexp of case names, with the cause: without a kernel to
// say so, waggle need not pass them. As root, a listed case that passes in
// the kernel fails the test, so that the list stays true.
var kernelFails = []struct {
	object, cases, cause string
}{
	{"v1.12.19/nat_test.o", "nat", "the CHECK program without a SETUP ends in ERROR with no message in both (not investigated)"},
	{"v1.14.19/tc_l2_announcement.o", "[01]_.*", "the test's own bug: it asserts memcmp(h_source, mac_one, ETH_HLEN) != 0, the MACs differ; Cilium 1.16 fixed it (== 0, ETH_ALEN)"},
}

// TestCilium builds Cilium's BPF unit tests with clang-19 and runs every
// test in waggle (user space) and, as root, in the kernel: every case that
// passes in the kernel must pass in waggle. Without root every case must
// pass in waggle but those kernelFails lists. -short runs a few objects in
// user space only.
func TestCilium(t *testing.T) {
	objs := ciliumObjects(t)
	kernelErr := kernel.Supported()
	if testing.Short() {
		kernelErr = errors.New("-short")
		objs = shortSet(objs)
	}
	if kernelErr != nil {
		t.Logf("kernel side skipped: %v", kernelErr)
	}
	var (
		mu  sync.Mutex
		tab = table{seen: map[string]bool{}}
	)
	tab.files = len(objs)
	t.Cleanup(func() { t.Log(tab.String()) })
	for _, path := range objs {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			obj, err := bpftest.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			user := caseMap(bpftest.Run(obj, bpftest.Options{Engine: userEngine(t)}))
			var kern map[string]bpftest.Case
			if kernelErr == nil {
				kern = caseMap(bpftest.Run(obj, bpftest.Options{Engine: bpftest.Kernel{}}))
			}
			mu.Lock()
			defer mu.Unlock()
			compare(t, name, user, kern, &tab)
		})
	}
}

// userEngine is the engine TestCilium runs the user-space side on:
// waggle's default (EngineAuto: the JIT on linux/amd64), or the one
// WAGGLE_BPFTEST_ENGINE names (waggle.ParseEngine: interp, interp-fast,
// jit), to run Cilium's tests on it:
//
//	WAGGLE_BPFTEST_ENGINE=interp go test ./bpftest -run 'TestCilium$' -v
func userEngine(t *testing.T) bpftest.Engine {
	name := os.Getenv("WAGGLE_BPFTEST_ENGINE")
	if name == "" {
		return bpftest.Interp{}
	}
	e, err := waggle.ParseEngine(name)
	if err != nil {
		t.Fatalf("WAGGLE_BPFTEST_ENGINE: %v", err)
	}
	return bpftest.Interp{Options: &waggle.CollectionOptions{RandSeed: bpftest.DefaultRandSeed, Engine: e}}
}

// compare checks one object's cases and counts them in tab.
func compare(t *testing.T, object string, user, kern map[string]bpftest.Case, tab *table) {
	names := map[string]bool{}
	for n := range user {
		names[n] = true
	}
	for n := range kern {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		u, uok := user[n]
		k, kok := kern[n]
		required := true
		failsToo := listed(kernelFails, object, n)
		if kern != nil {
			tab.cases++
			if kok && k.Status == bpftest.Pass {
				tab.kernelPass++
				if failsToo != "" {
					t.Errorf("%s: passes in the kernel, though listed as failing there (%s): remove it from kernelFails", n, failsToo)
				}
			} else {
				required = false
				t.Logf("%s: fails in the kernel: %s %s", n, k.Status, strings.Join(k.Logs, "; "))
			}
		} else {
			if uok {
				tab.cases++
			}
			if failsToo != "" {
				required = false
				t.Logf("%s: fails in the kernel too: %s", n, failsToo)
			}
		}
		if uok && u.Status == bpftest.Pass {
			tab.userPass++
		}
		if !required || (uok && u.Status == bpftest.Pass) {
			if cause := known(object, n); cause != "" && uok && u.Status == bpftest.Pass {
				t.Errorf("%s: passes now, though listed as a known difference (%s): remove it from knownDiffs", n, cause)
			}
			continue
		}
		if !uok { // the test failed as a whole: its own case says why
			test, _, _ := strings.Cut(n, "/")
			if u, uok = user[test]; !uok {
				u = bpftest.Case{Status: bpftest.Unknown, Logs: []string{"no such case in user space"}}
			}
		}
		why := u.Status.String() + ": " + strings.Join(u.Logs, "; ")
		if cause := known(object, n); cause != "" {
			tab.known = append(tab.known, fmt.Sprintf("%s: %s", object, cause))
			if !tab.seen[object] { // the listed cause may be stale: show today's
				t.Logf("%s: known difference; now: %s", n, why)
			}
			tab.seen[object] = true
			continue
		}
		tab.diffs = append(tab.diffs, fmt.Sprintf("%s %s: %s", object, n, why))
		if kern == nil {
			t.Errorf("%s: fails in waggle: %s", n, why)
			continue
		}
		t.Errorf("%s: passes in the kernel, not in waggle: %s", n, why)
	}
}

func known(object, name string) string { return listed(knownDiffs, object, name) }

// listed returns the cause of the entry of list that names the case, or "".
func listed(list []struct{ object, cases, cause string }, object, name string) string {
	for _, d := range list {
		if d.object == object && regexp.MustCompile("^(?:"+d.cases+")$").MatchString(name) {
			return d.cause
		}
	}
	return ""
}

func caseMap(results []bpftest.Result) map[string]bpftest.Case {
	m := map[string]bpftest.Case{}
	for _, r := range results {
		for _, c := range r.Cases() {
			m[c.Name] = c
		}
	}
	return m
}

// table is the summary the test logs.
type table struct {
	files, cases, kernelPass, userPass int
	diffs, known                       []string
	seen                               map[string]bool // objects with known differences
}

func (t *table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Cilium's BPF unit tests: %d files, %d cases, %d pass in the kernel, %d pass in waggle\n", t.files, t.cases, t.kernelPass, t.userPass)
	sort.Strings(t.known)
	sort.Strings(t.diffs)
	for i := 0; i < len(t.known); {
		j := i + 1
		for j < len(t.known) && t.known[j] == t.known[i] {
			j++
		}
		fmt.Fprintf(&b, "  known (%d cases): %s\n", j-i, t.known[i])
		i = j
	}
	for _, d := range t.diffs {
		fmt.Fprintf(&b, "  NEW:   %s\n", d)
	}
	return b.String()
}

// shortSet is what -short runs: a few objects spread over the list.
func shortSet(objs []string) []string {
	var out []string
	for i := 0; i < len(objs); i += 20 {
		out = append(out, objs[i])
	}
	return out
}

// ciliumObjects returns the built test objects of the workplace's tree,
// building them into the cache when they are not there yet; it skips the
// test, saying why, when the tree or the tools are missing.
func ciliumObjects(tb testing.TB) []string {
	tb.Helper()
	b := ciliumBuild{name: "main", src: findCilium(tb), flags: ciliumFlags, scapy: true}
	b.checkTools(tb)
	objs, failed, err := b.objects(tb)
	if err == nil && len(failed) > 0 {
		err = errors.Join(failed...)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if len(objs) == 0 {
		tb.Fatalf("no objects built from %s", b.src)
	}
	return objs
}

// ciliumBuild is how one bpf/ tree's unit tests are built: the flags of
// that tree's tests/Makefile.
type ciliumBuild struct {
	// name names the tree in messages: "main" or the release.
	name string
	// src is the bpf/ tree, read only.
	src string
	// flags are clang's flags, run from inside tests/.
	flags []string
	// llc, when not nil, makes the build two steps, as Cilium's Makefile
	// did until 1.15: clang emits LLVM bitcode (flags and -emit-llvm),
	// then llc-19 with these flags makes the object.
	llc []string
	// scapy means tests/output/gen_pkts.h is generated by the tree's
	// tests/scapy/parser.py first (Cilium 1.19 on).
	scapy bool
}

// checkTools skips tb when the tools the build needs are missing.
func (b ciliumBuild) checkTools(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath(clang); err != nil {
		tb.Skipf("%s is not installed (Debian: apt-get install clang-19)", clang)
	}
	if b.llc != nil {
		if _, err := exec.LookPath(llc); err != nil {
			tb.Skipf("%s is not installed (Debian: apt-get install llvm-19)", llc)
		}
	}
	if b.scapy {
		if err := exec.Command(python, "-c", "import scapy, jinja2").Run(); err != nil {
			tb.Skipf("%s cannot import scapy and jinja2 (Debian: apt-get install python3-scapy python3-jinja2): %v", python, err)
		}
	}
}

// objects returns the tree's built objects and the files that did not
// build (one error each, naming the file), building them into the cache,
// in a folder keyed by the build's inputs, when they are not there yet.
func (b ciliumBuild) objects(tb testing.TB) (objs []string, failed []error, err error) {
	tb.Helper()
	key, err := b.inputsKey()
	if err != nil {
		return nil, nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, nil, err
	}
	out := filepath.Join(cache, "waggle", "cilium-tests", key[:16])
	if _, err := os.Stat(filepath.Join(out, "complete")); err != nil {
		if err := b.build(tb, out); err != nil {
			return nil, nil, err
		}
	}
	objs, err = filepath.Glob(filepath.Join(out, "*.o"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(objs)
	logs, err := filepath.Glob(filepath.Join(out, "*.failed"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(logs)
	for _, l := range logs {
		msg, err := os.ReadFile(l)
		if err != nil {
			return nil, nil, err
		}
		failed = append(failed, fmt.Errorf("%s.c: %s", strings.TrimSuffix(filepath.Base(l), ".failed"), msg))
	}
	return objs, failed, nil
}

// findCilium returns the tree's folder, from the environment or beside
// the repository, or skips.
func findCilium(tb testing.TB) string {
	if dir := os.Getenv(ciliumEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "tests", "common.h")); err != nil {
			tb.Fatalf("%s=%s: not Cilium's bpf/ tree: %v", ciliumEnv, dir, err)
		}
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for dir := filepath.Dir(wd); ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, ciliumDir)
		if _, err := os.Stat(filepath.Join(cand, "tests", "common.h")); err == nil {
			return cand
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	tb.Skipf("Cilium's bpf/ tree not found: no %s beside the repository or its parents (set %s)", ciliumDir, ciliumEnv)
	return ""
}

// inputsKey hashes everything a build depends on: the tree's files, the
// compilers' versions and the flags.
func (b ciliumBuild) inputsKey() (string, error) {
	h := sha256.New()
	ver, err := exec.Command(clang, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", clang, err)
	}
	// The workplace's tree hashes as it always has, so that its cache
	// stays valid.
	fmt.Fprintf(h, "%s\n%q -ffile-prefix-map\n", ver, b.flags)
	if b.llc != nil {
		ver, err := exec.Command(llc, "--version").Output()
		if err != nil {
			return "", fmt.Errorf("%s --version: %w", llc, err)
		}
		fmt.Fprintf(h, "%s\n%q\n", ver, b.llc)
	}
	if !b.scapy {
		fmt.Fprintf(h, "no scapy\n")
	}
	src := b.src
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// build builds every tests/*.c of the tree into out, as Cilium's Makefile
// does: in a writable copy of the tree, from inside tests/ with relative
// names (test_log() stores file names in records of at most 127 bytes), the
// packet header generated by scapy first when the tree has it; two
// compilers at a time, niced. Each object lands in out when it is built,
// so a build that is interrupted (a test timeout on a loaded machine)
// resumes where it stopped; a file that does not build leaves
// <name>.failed with the compiler's message instead. "complete" marks the
// end.
func (b ciliumBuild) build(tb testing.TB, out string) error {
	tb.Logf("building Cilium's BPF unit tests (%s) from %s into %s", b.name, b.src, out)
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Work folders of builds that were killed (a test timeout) stay
	// behind; remove those of more than an hour ago.
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "build-*"))
	for _, dir := range old {
		if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.RemoveAll(dir)
		}
	}
	work, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "src")
	if err := exec.Command("cp", "-r", b.src, tree).Run(); err != nil {
		return fmt.Errorf("copy %s: %w", b.src, err)
	}
	if err := exec.Command("chmod", "-R", "u+w", tree).Run(); err != nil {
		return err
	}
	tests := filepath.Join(tree, "tests")
	if err := os.MkdirAll(filepath.Join(tests, "output"), 0o755); err != nil {
		return err
	}
	if b.scapy {
		gen := exec.Command(python, "scapy/parser.py", ".")
		gen.Dir = tests
		pkts, err := gen.Output()
		if err != nil {
			return fmt.Errorf("generate gen_pkts.h: %w", withStderr(err))
		}
		if err := os.WriteFile(filepath.Join(tests, "output", "gen_pkts.h"), pkts, 0o644); err != nil {
			return err
		}
	}
	srcs, err := filepath.Glob(filepath.Join(tests, "*.c"))
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	jobs := make(chan string)
	for range min(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				base := filepath.Base(c)
				obj := strings.TrimSuffix(base, ".c") + ".o"
				msg, err := b.compile(tree, tests, base, filepath.Join(work, obj))
				if err == nil {
					err = os.Rename(filepath.Join(work, obj), filepath.Join(out, obj))
				} else if msg != nil {
					// The compiler refused the file: recorded, not fatal.
					err = os.WriteFile(filepath.Join(out, strings.TrimSuffix(base, ".c")+".failed"), msg, 0o644)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", base, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range srcs {
		stem := filepath.Join(out, strings.TrimSuffix(filepath.Base(c), ".c"))
		if _, err := os.Stat(stem + ".o"); err == nil {
			continue // built by an earlier, interrupted run
		}
		if _, err := os.Stat(stem + ".failed"); err == nil {
			continue
		}
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	tb.Logf("built %s in %v", b.name, time.Since(start).Round(time.Second))
	return os.WriteFile(filepath.Join(out, "complete"), nil, 0o644)
}

// compile builds the file base of the folder tests (in the copy tree)
// into obj. When a compiler refuses the file it returns the compiler's
// message and an error; other errors come without a message.
func (b ciliumBuild) compile(tree, tests, base, obj string) (msg []byte, err error) {
	// The prefix map keeps the build folder out of the objects' line info
	// (error messages name cilium-bpf/...).
	args := append(append([]string{}, b.flags...), "-ffile-prefix-map="+tree+"=cilium-bpf", "-c", base)
	run := func(name string, args ...string) ([]byte, error) {
		cmd := exec.Command("nice", append([]string{"-n", "10", name}, args...)...)
		cmd.Dir = tests
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if len(out) == 0 {
				out = []byte(err.Error())
			}
			return out, err
		}
		return nil, err
	}
	if b.llc == nil {
		return run(clang, append(args, "-o", obj)...)
	}
	bc := obj + ".bc"
	defer os.Remove(bc)
	if msg, err := run(clang, append(args, "-emit-llvm", "-o", bc)...); err != nil {
		return msg, err
	}
	return run(llc, append(append([]string{}, b.llc...), "-filetype=obj", "-o", obj, bc)...)
}

func withStderr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return err
}
