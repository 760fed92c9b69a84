// Package ciliumsrc fetches the bpf/ tree of past Cilium releases, for
// tests that build Cilium's datapath and unit tests of several years and
// run them in waggle and in Linux.
//
// Cilium's repository is a Go module (github.com/cilium/cilium), and a Go
// module's zip holds every file of the module, the C sources of bpf/
// included. So the Go module proxy, which CI reaches anyway, serves every
// release's datapath with a checksum the Go checksum database vouches for:
// Fetch runs `go mod download` and returns the bpf/ folder in the module
// cache. The trees are GPL-2.0/BSD-2: they are test input, read from the
// cache, never copied into the repository.
package ciliumsrc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Module is Cilium's module path.
const Module = "github.com/cilium/cilium"

// Release is a Cilium release whose bpf/ tree the tests build.
type Release struct {
	// Version is the module version, e.g. "v1.14.19".
	Version string
	// Branched is the year the release's branch was cut (its .0): the age
	// of its datapath, whatever the patch release.
	Branched int
}

// Releases are the releases the tests use, one per year from 2021 to
// 2025: the newest patch release of each branch that the module proxy
// serves (it refuses some versions: "This module version is not
// available"). The workplace's own tree (../shared/cilium-bpf) is 2026's.
var Releases = []Release{
	{"v1.10.0", 2021},
	{"v1.12.19", 2022},
	{"v1.14.19", 2023},
	{"v1.16.6", 2024},
	{"v1.18.4", 2025},
}

// Fetch downloads release version of Cilium's module (once: the module
// cache keeps it) and returns its bpf/ folder. The folder is read-only, as
// the module cache is; copy it to build in it. ctx bounds the download.
func Fetch(ctx context.Context, version string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("cilium %s: the go command is needed to download it: %w", version, err)
	}
	// Outside any module, so that no go.mod or go.sum is touched, and in
	// module mode whatever the environment says.
	tmp, err := os.MkdirTemp("", "ciliumsrc-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", Module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("cilium %s: go mod download: %w: %s", version, runErr, bytes.TrimSpace(stderr.Bytes()))
		}
		return "", fmt.Errorf("cilium %s: go mod download printed %q: %w", version, out, err)
	}
	if res.Error != "" {
		return "", fmt.Errorf("cilium %s: go mod download: %s", version, res.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("cilium %s: go mod download: %w: %s", version, runErr, bytes.TrimSpace(stderr.Bytes()))
	}
	bpf := filepath.Join(res.Dir, "bpf")
	if _, err := os.Stat(filepath.Join(bpf, "include", "bpf")); err != nil {
		return "", fmt.Errorf("cilium %s: %s has no bpf/ tree: %w", version, res.Dir, err)
	}
	return bpf, nil
}

// ErrUnknown is returned by Lookup for a version not in Releases.
var ErrUnknown = errors.New("not one of the releases the tests use")

// Lookup returns the release of version.
func Lookup(version string) (Release, error) {
	for _, r := range Releases {
		if r.Version == version {
			return r, nil
		}
	}
	return Release{}, fmt.Errorf("cilium %s: %w", version, ErrUnknown)
}
