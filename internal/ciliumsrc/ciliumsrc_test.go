package ciliumsrc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/ciliumsrc"
)

// TestFetch downloads every release and checks that its tree is the
// datapath (bpf_lxc.c and the helper headers), with the version in its
// path. Without the module proxy it skips, saying so.
func TestFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Cilium's module (20-35 MB a release): not in -short")
	}
	for _, r := range ciliumsrc.Releases {
		t.Run(r.Version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			dir, err := ciliumsrc.Fetch(ctx, r.Version)
			if err != nil && strings.Contains(err.Error(), "dial tcp") {
				t.Skipf("no module proxy: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dir, "@"+r.Version) {
				t.Errorf("tree %s is not release %s", dir, r.Version)
			}
			for _, f := range []string{"bpf_lxc.c", "bpf_host.c", "lib/common.h"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestFetchRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("asks the module proxy: not in -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := ciliumsrc.Fetch(ctx, "v0.0.0-not-a-version")
	if err == nil {
		t.Fatal("a version that does not exist was fetched")
	}
	if !strings.Contains(err.Error(), "v0.0.0-not-a-version") {
		t.Errorf("error does not name the version: %v", err)
	}
}

func TestLookup(t *testing.T) {
	r, err := ciliumsrc.Lookup(ciliumsrc.Releases[0].Version)
	if err != nil || r != ciliumsrc.Releases[0] {
		t.Errorf("Lookup(%s) = %v, %v", ciliumsrc.Releases[0].Version, r, err)
	}
	if _, err := ciliumsrc.Lookup("v9.9.9"); !errors.Is(err, ciliumsrc.ErrUnknown) {
		t.Errorf("Lookup(v9.9.9) error %v, want ErrUnknown", err)
	}
	for i := 1; i < len(ciliumsrc.Releases); i++ {
		if ciliumsrc.Releases[i].Branched <= ciliumsrc.Releases[i-1].Branched {
			t.Errorf("releases not one per year in order: %v", ciliumsrc.Releases)
		}
	}
}
