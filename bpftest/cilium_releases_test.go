package bpftest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/waggle-bpf/waggle/bpftest"
	"github.com/waggle-bpf/waggle/internal/ciliumsrc"
	"github.com/waggle-bpf/waggle/kernel"
)

// ciliumWarnings are the warning flags every release's tests/Makefile
// passes, less -Werror: clang-19 warns about code that the clang of the
// day did not (loops it cannot unroll, say), and a warning is no reason
// to leave a test out.
var ciliumWarnings = []string{
	"-Wall", "-Wextra", "-Wshadow",
	"-Wno-address-of-packed-member", "-Wno-unknown-warning-option",
	"-Wno-gnu-variable-sized-type-not-at-end",
	"-Wimplicit-int-conversion", "-Wenum-conversion",
}

// releaseBuild returns how release version's unit tests are built: the
// flags of that release's bpf/tests/Makefile, with the include paths
// relative to tests/ and without -MD (dependency files) and -Werror
// (ciliumWarnings). KERNEL is unset, as `make -C bpf/tests` leaves it
// (the Makefile includes only Makefile.defs), so -mcpu is the Makefile's
// default: v2 until 1.15, v3 since. legacy says the release numbers its
// statuses 0 to 3 (bpftest.Options.LegacyStatus); inline are the data
// sections its loader inlined (bpftest.Object.InlineGlobalData). why is
// not "" for a release without unit tests in the check convention: the
// reason.
func releaseBuild(version string) (b ciliumBuild, legacy bool, inline []string, why string) {
	nrCPUs := "-D__NR_CPUS__=" + strconv.Itoa(runtime.NumCPU()) // `nproc --all`
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	switch version {
	case "v1.10.0":
		// tests/bpf_ct_tests.c is a plain tc program; tests/prog_test, a
		// Go test behind the privileged_tests tag, sends it packets made
		// with gopacket and judges the conntrack maps it leaves with
		// Cilium's own Go packages. There is no check program to run.
		return b, false, nil, "no unit tests in the check convention: its one BPF test (bpf_ct_tests.c) is judged by a Go test (tests/prog_test) with Cilium's Go packages"
	case "v1.12.19":
		// Two steps, clang -emit-llvm then llc -mattr=dwarfris.
		return ciliumBuild{
			flags: cat([]string{"-I../include", "-I..", nrCPUs, "-O2", "-g", "-target", "bpf", "-std=gnu99", "-nostdinc"},
				ciliumWarnings, []string{"-Wdeclaration-after-statement"}),
			llc: []string{"-march=bpf", "-mattr=dwarfris", "-mcpu=v2"},
		}, true, nil, "" // its harness loaded the objects with cilium/ebpf as they are
	case "v1.14.19":
		return ciliumBuild{
			flags: cat([]string{"-I../include", "-I..", nrCPUs, "-O2", "-g", "--target=bpf", "-std=gnu99", "-nostdinc"},
				ciliumWarnings, []string{"-Wimplicit-fallthrough"}),
			llc: []string{"-march=bpf", "-mcpu=v2"},
		}, true, []string{".data"}, ""
	case "v1.16.6":
		return ciliumBuild{
			flags: cat([]string{"-I../include", "-I..", nrCPUs, "-O2", "-g", "--target=bpf", "-std=gnu99", "-nostdinc"},
				ciliumWarnings, []string{"-Wimplicit-fallthrough", "-mcpu=v3"}),
		}, true, []string{".rodata.config"}, ""
	case "v1.18.4":
		// The loader's StandardCFlags (pkg/datapath/loader/compile.go),
		// which tests/Makefile reads with tools/clang_cflags.go.
		return ciliumBuild{
			flags: cat([]string{"-I..", "-I../include", "-g", "-O2", "--target=bpf", "-std=gnu99", "-nostdinc",
				"-ftrap-function=__undefined_trap"}, ciliumWarnings, []string{"-Wimplicit-fallthrough", "-mcpu=v3"}),
		}, true, nil, "" // .rodata.config is frozen read-only data now
	}
	return b, false, nil, "no build recipe for this release: add its tests/Makefile's flags to releaseBuild"
}

// releaseRow is one release's line of TestCiliumReleases' table.
type releaseRow struct {
	version                  string
	files, built             int
	tab                      table
	kernel                   bool // the kernel side ran
	note                     string
	notBuilt, kernelRefusals []string
}

// TestCiliumReleases builds the BPF unit tests of past Cilium releases
// (ciliumsrc.Releases, fetched from the Go module proxy) with the flags of
// each release's own tests/Makefile, and runs every case in waggle and, as
// root, in the kernel, compared case by case as TestCilium compares them:
// every case that passes in the kernel must pass in waggle. A case that
// fails in the kernel (an old release on a new kernel) is counted, not
// failed; a file clang-19 cannot build is listed with its first error.
// Without the kernel every case must pass in waggle but those kernelFails
// lists, which fail in the kernel too. Not in -short.
func TestCiliumReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the unit tests of five Cilium releases (about two minutes cold): not in -short")
	}
	kernelErr := kernel.Supported()
	if kernelErr != nil {
		t.Logf("kernel side skipped: %v", kernelErr)
	}
	var rows []*releaseRow
	t.Cleanup(func() { t.Log(releaseTable(rows)) })
	for _, r := range ciliumsrc.Releases {
		row := &releaseRow{version: r.Version, kernel: kernelErr == nil, tab: table{seen: map[string]bool{}}}
		rows = append(rows, row)
		t.Run(r.Version, func(t *testing.T) {
			b, legacy, inline, why := releaseBuild(r.Version)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			src, err := ciliumsrc.Fetch(ctx, r.Version)
			if err != nil && offline(err) {
				row.note = "not fetched"
				t.Skipf("no module proxy: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			srcs, err := filepath.Glob(filepath.Join(src, "tests", "*.c"))
			if err != nil {
				t.Fatal(err)
			}
			row.files = len(srcs)
			if why != "" {
				row.note = why
				t.Skipf("%s: %s", r.Version, why)
			}
			b.name, b.src = r.Version, src
			b.checkTools(t)
			objs, failed, err := b.objects(t)
			if err != nil {
				t.Fatal(err)
			}
			row.built = len(objs)
			for _, f := range failed {
				first, _, _ := strings.Cut(f.Error(), "\n")
				row.notBuilt = append(row.notBuilt, first)
				t.Logf("clang-19 cannot build %s", first)
			}
			var mu sync.Mutex
			t.Run("objects", func(t *testing.T) {
				for _, path := range objs {
					name := filepath.Base(path)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						obj, err := bpftest.Open(path)
						if err != nil {
							t.Fatal(err)
						}
						if err := obj.InlineGlobalData(inline...); err != nil {
							t.Fatal(err)
						}
						user := caseMap(bpftest.Run(obj, bpftest.Options{Engine: bpftest.Interp{}, LegacyStatus: legacy}))
						var kern map[string]bpftest.Case
						var refused string
						if kernelErr == nil {
							results := bpftest.Run(obj, bpftest.Options{Engine: bpftest.Kernel{}, LegacyStatus: legacy})
							refused = loadError(results)
							kern = caseMap(results)
						}
						mu.Lock()
						defer mu.Unlock()
						if refused != "" {
							row.kernelRefusals = append(row.kernelRefusals, name+": "+refused)
							t.Logf("the kernel refuses %s: %s", name, refused)
						}
						compare(t, r.Version+"/"+name, user, kern, &row.tab)
					})
				}
			})
		})
	}
}

// loadError returns the first line of why the kernel did not load the
// object, or "" if it did.
func loadError(results []bpftest.Result) string {
	if len(results) == 0 || results[0].Err == nil || results[0].Status != bpftest.Unknown {
		return ""
	}
	msg := results[0].Err.Error()
	if !strings.HasPrefix(msg, "load: ") {
		return ""
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(msg, "load: "), "\n")
	return first
}

// offline reports whether err is the module proxy being out of reach.
func offline(err error) bool {
	msg := err.Error()
	for _, s := range []string{"dial tcp", "no such host", "GOPROXY=off", "network is unreachable", "connection refused", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// releaseTable formats the rows as the table TestCiliumReleases logs.
func releaseTable(rows []*releaseRow) string {
	var b strings.Builder
	b.WriteString("Cilium's BPF unit tests, release by release (clang-19):\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "release\tfiles\tbuilt\tcases\tpass in kernel\tpass in waggle\tdifferences\t")
	for _, r := range rows {
		kern := strconv.Itoa(r.tab.kernelPass)
		if !r.kernel {
			kern = "-"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\n", r.version, r.files, r.built, r.tab.cases, kern, r.tab.userPass, len(r.tab.diffs)+len(r.tab.known), r.note)
	}
	w.Flush()
	for _, r := range rows {
		for _, f := range r.notBuilt {
			fmt.Fprintf(&b, "  %s not built: %s\n", r.version, f)
		}
		for _, f := range r.kernelRefusals {
			fmt.Fprintf(&b, "  %s refused by the kernel: %s\n", r.version, f)
		}
		for _, k := range r.tab.known {
			fmt.Fprintf(&b, "  %s known: %s\n", r.version, k)
		}
		for _, d := range r.tab.diffs {
			fmt.Fprintf(&b, "  %s NEW: %s\n", r.version, d)
		}
	}
	return b.String()
}
