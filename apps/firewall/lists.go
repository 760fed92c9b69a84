package firewall

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// maxListBytes bounds one list file, maxLine one of its lines.
const (
	maxListBytes = 256 << 20
	maxLine      = 4096
)

// parsePrefix parses "10.0.0.0/8", "2001:db8::/32" or a bare address
// (a /32 or /128). A prefix with host bits set is an error, with the
// prefix it probably meant.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return netip.Prefix{}, fmt.Errorf("%q... is neither a CIDR prefix nor an address", s[:48])
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR prefix nor an address", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix: %w", s, err)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, m)
	}
	return p, nil
}

// readLines calls line for each line of the file at path (relative to
// dir), with its number, bounding the file's and the lines' sizes.
func readLines(dir, path string, line func(n int, s string) error) error {
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > maxListBytes {
		return fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), maxListBytes)
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxListBytes+1))
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	n, read := 0, 0
	for sc.Scan() {
		n++
		read += len(sc.Bytes()) + 1
		if read > maxListBytes {
			return fmt.Errorf("%s: more than %d bytes", path, maxListBytes)
		}
		if err := line(n, sc.Text()); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: a line longer than %d bytes", path, n+1, maxLine)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readCIDRFile reads a plain CIDR file: a prefix or address per line,
// blank lines and '#' or ';' comments ignored (FireHOL netsets, Spamhaus
// DROP lists).
func readCIDRFile(dir, path string, add func(netip.Prefix) error) error {
	return readLines(dir, path, func(_ int, s string) error {
		if i := strings.IndexAny(s, "#;"); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
		p, err := parsePrefix(s)
		if err != nil {
			return err
		}
		return add(p)
	})
}

// readIpsetFile reads an ipset save file: the elements of its "add SET
// ELEMENT [options]" lines, which must be addresses or prefixes (sets of
// type hash:net, hash:ip); "create" and other lines are skipped.
func readIpsetFile(dir, path string, add func(netip.Prefix) error) error {
	return readLines(dir, path, func(_ int, s string) error {
		f := strings.Fields(s)
		if len(f) == 0 || f[0] != "add" {
			return nil
		}
		if len(f) < 3 {
			return fmt.Errorf("%q: an add line without an element", s)
		}
		if strings.ContainsAny(f[2], ",-") {
			return fmt.Errorf("element %q of set %s: only addresses and prefixes are supported (hash:ip, hash:net), not ranges or ip,port pairs", f[2], f[1])
		}
		p, err := parsePrefix(f[2])
		if err != nil {
			return fmt.Errorf("set %s: %w", f[1], err)
		}
		return add(p)
	})
}
