package ciliumdp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/ciliumdp"
	"github.com/waggle-bpf/waggle/internal/ciliumsrc"
)

// tree is one Cilium bpf/ tree to test.
type tree struct {
	key  string // "v1.10.0", "workplace": runGaps' and prepareGaps' prefix
	name string // "v1.10.0 (2021)"
	dir  string
}

func trees(t *testing.T, ctx context.Context) []tree {
	var out []tree
	for _, r := range ciliumsrc.Releases {
		dir, err := ciliumsrc.Fetch(ctx, r.Version)
		if err != nil {
			if strings.Contains(err.Error(), "dial tcp") || strings.Contains(err.Error(), "lookup") {
				t.Logf("cilium %s: no module proxy: %v", r.Version, err)
				continue
			}
			t.Fatal(err)
		}
		out = append(out, tree{r.Version, fmt.Sprintf("%s (%d)", r.Version, r.Branched), dir})
	}
	if dir, ok := ciliumdp.Workplace(); ok {
		out = append(out, tree{"workplace", "workplace (2026)", dir})
	} else {
		t.Logf("no workplace tree (%s beside the repository or its parents, or $%s): left out", ciliumdp.WorkplaceDir, ciliumdp.WorkplaceEnv)
	}
	return out
}

// cacheRoot is where the objects are built: the user's cache folder.
func cacheRoot() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "waggle", "ciliumdp")
}

// built is a tree and its build.
type built struct {
	tree
	res *ciliumdp.Result
}

// buildTrees builds (or finds in the cache) the datapath of every tree,
// skipping without the tools and in -short.
func buildTrees(t *testing.T, ctx context.Context) []built {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Cilium's datapath of six years with clang (about a minute on two idle cores, cached by inputs after): not in -short")
	}
	if err := ciliumdp.Find(); err != nil {
		t.Skipf("cilium datapath: %v", err)
	}
	var out []built
	for _, tr := range trees(t, ctx) {
		start := time.Now()
		res, err := ciliumdp.Build(ctx, tr.dir, cacheRoot(), 2, t.Logf)
		if err != nil {
			t.Fatalf("%s: build: %v", tr.name, err)
		}
		t.Logf("%s: %d objects built in %s (cached %v, build took %s, %v now)", tr.name, len(res.Objects), res.Dir, res.Cached, res.Took, time.Since(start).Round(time.Millisecond))
		for name, msg := range res.Failed {
			t.Logf("%s: %s did not build with clang-19: %s", tr.name, name, firstLine(msg))
		}
		for _, b := range res.Objects {
			if len(b.NoError) > 0 {
				t.Logf("%s: %s built with -Wno-error=%s (clang-19 warns where the release's clang did not)", tr.name, b.Name, strings.Join(b.NoError, ",-Wno-error="))
			}
		}
		out = append(out, built{tr, res})
	}
	return out
}

// TestBuild builds the datapath of every tree (CI runs it first, with a
// long timeout, so that TestDatapath finds the objects): each tree gives
// objects, every object is an eBPF ELF with programs, and those clang-19
// cannot build are reported, not failed.
func TestBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	for _, b := range buildTrees(t, ctx) {
		if len(b.res.Objects) == 0 {
			t.Errorf("%s: no object built", b.name)
		}
		for _, o := range b.res.Objects {
			spec, err := ebpf.LoadCollectionSpec(o.Path)
			if err != nil {
				t.Errorf("%s: %s: %v", b.name, o.Name, err)
				continue
			}
			if len(spec.Programs) == 0 {
				t.Errorf("%s: %s has no programs", b.name, o.Name)
			}
		}
	}
}

// buildAll builds (or finds in the cache) the workplace tree in every
// configuration of complexity-tests/netnext, skipping unless
// $WAGGLE_CILIUM_ALL=1, without the tools or without the tree.
func buildAll(t testing.TB, ctx context.Context) *ciliumdp.Result {
	t.Helper()
	if os.Getenv(ciliumdp.AllConfigsEnv) != "1" {
		t.Skipf("builds Cilium's datapath in all 38 configurations (minutes cold, cached by inputs after): set %s=1", ciliumdp.AllConfigsEnv)
	}
	if err := ciliumdp.Find(); err != nil {
		t.Skipf("cilium datapath: %v", err)
	}
	dir, ok := ciliumdp.Workplace()
	if !ok {
		t.Skipf("no workplace tree (%s beside the repository or its parents, or $%s)", ciliumdp.WorkplaceDir, ciliumdp.WorkplaceEnv)
	}
	start := time.Now()
	res, err := ciliumdp.BuildConfigs(ctx, dir, cacheRoot(), ciliumdp.AllConfigs, 2, t.Logf)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("every configuration: %d objects built in %s (cached %v, build took %s, %v now)", len(res.Objects), res.Dir, res.Cached, res.Took, time.Since(start).Round(time.Millisecond))
	for name, msg := range res.Failed {
		t.Errorf("%s did not build with clang-19: %s", name, firstLine(msg))
	}
	return res
}

// TestBuildAll builds the workplace tree in every configuration of
// complexity-tests/netnext, as Cilium's verifier complexity test does:
// one object per configuration file, each an eBPF ELF with programs.
// Opt-in: WAGGLE_CILIUM_ALL=1 go test ./internal/ciliumdp -run TestBuildAll -timeout 30m
func TestBuildAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	res := buildAll(t, ctx)
	dir, _ := ciliumdp.Workplace()
	want, err := ciliumdp.AllObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != len(want) {
		t.Errorf("%d objects built, want %d (one per configuration)", len(res.Objects), len(want))
	}
	files := map[string]bool{}
	for _, o := range res.Objects {
		if o.Config == 0 {
			t.Errorf("%s: no configuration number", o.Label())
		}
		if base := filepath.Base(o.Path); files[base] {
			t.Errorf("%s: file %s built twice", o.Label(), base)
		} else {
			files[base] = true
		}
		spec, err := ebpf.LoadCollectionSpec(o.Path)
		if err != nil {
			t.Errorf("%s: %v", o.Label(), err)
			continue
		}
		if len(spec.Programs) == 0 {
			t.Errorf("%s has no programs", o.Label())
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
