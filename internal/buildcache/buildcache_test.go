package buildcache_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/waggle-bpf/waggle/internal/buildcache"
)

type manifest struct{ Objects []string }

func TestPublish(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "key")
	var m manifest
	if err := buildcache.Load(dir, &m); err == nil {
		t.Fatal("Load found a build that was never published")
	}
	first := filepath.Join(root, "build-1")
	os.Mkdir(first, 0o755)
	if err := buildcache.Publish(first, dir, manifest{Objects: []string{"a.o"}}); err != nil {
		t.Fatal(err)
	}
	// A second build of the same key, finishing later, keeps the first.
	second := filepath.Join(root, "build-2")
	os.Mkdir(second, 0o755)
	os.WriteFile(filepath.Join(second, "extra"), nil, 0o644)
	if err := buildcache.Publish(second, dir, manifest{Objects: []string{"b.o"}}); err != nil {
		t.Fatal(err)
	}
	if err := buildcache.Load(dir, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 1 || m.Objects[0] != "a.o" {
		t.Errorf("manifest %v, want the first build's", m)
	}
	// A manifest that is not JSON is an error naming the file.
	os.WriteFile(filepath.Join(dir, buildcache.Manifest), []byte("{"), 0o644)
	if err := buildcache.Load(dir, &m); err == nil {
		t.Error("a broken manifest loaded")
	}
}
