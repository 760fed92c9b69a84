// Package buildcache keeps what tests build at test time (the kernel's
// samples, Cilium's datapath) in the user's cache: one folder per key of
// the build's inputs, published whole by a rename, so that a reader never
// sees half a build, with a manifest.json saying what the build holds.
package buildcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Manifest is the name of a build's manifest file.
const Manifest = "manifest.json"

// Publish writes m as the manifest of the finished build in the folder
// built, then renames built to dir. If another build published dir first,
// Publish keeps that one and returns nil.
func Publish(built, dir string, m any) error {
	data, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(built, Manifest), data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(built, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, Manifest)); serr == nil {
			return nil // another build finished first
		}
		return err
	}
	return nil
}

// Load reads the manifest of the published build in dir into m; an error
// means there is no finished build there.
func Load(dir string, m any) error {
	data, err := os.ReadFile(filepath.Join(dir, Manifest))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, Manifest), err)
	}
	return nil
}

// ClangSysIncludes returns clang-19's own include directories as
// -idirafter options, as the kernel's Makefiles compute them for BPF
// builds (get_sys_includes): the BPF target has no system headers of its
// own, so the host's are searched last.
func ClangSysIncludes(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "clang-19", "-v", "-E", "-")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("clang-19 -v: %w", err)
	}
	var dirs []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "#include <...> search starts here:"):
			in = true
		case strings.HasPrefix(l, "End of search list."):
			in = false
		case in && strings.HasPrefix(l, " /"):
			dirs = append(dirs, "-idirafter", strings.TrimSpace(l))
		}
	}
	return dirs, nil
}

// Key returns a cache key for a build: a hash of its recipe, the contents
// and names of its input files ("" for an input that is absent) and
// clang-19's version.
func Key(recipe string, files ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, recipe)
	for _, f := range files {
		if f == "" {
			fmt.Fprintln(h, "none")
			continue
		}
		r, err := os.Open(f)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, f)
	}
	out, err := exec.Command("clang-19", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("clang-19 --version: %w", err)
	}
	h.Write(out)
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}
