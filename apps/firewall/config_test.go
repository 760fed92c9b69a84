package firewall

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompile_errors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bad.txt", "10.0.0.0/8\n# comment\n10.1.2.300/32\n")
	write("long.txt", strings.Repeat("1", maxLine+10)+"\n")
	write("range.ipset", "create s hash:net family inet\nadd s 10.0.0.1-10.0.0.9\n")
	write("pair.ipset", "add s 10.0.0.1,tcp:80\n")
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad cidr", `rules: [{name: a, action: deny, cidrs: [10.0.0.0/33]}]`, `"10.0.0.0/33" is not a CIDR prefix`},
		{"host bits", `rules: [{name: a, action: deny, cidrs: [10.0.0.1/8]}]`, "did you mean 10.0.0.0/8?"},
		{"garbage", `rules: [{name: a, action: deny, cidrs: [hello]}]`, `"hello" is neither a CIDR prefix nor an address`},
		{"bad line in file", `rules: [{name: a, action: deny, files: [bad.txt]}]`, "bad.txt:3: \"10.1.2.300/32\""},
		{"missing file", `rules: [{name: a, action: deny, files: [nope.txt]}]`, "nope.txt: no such file"},
		{"long line", `rules: [{name: a, action: deny, files: [long.txt]}]`, "a line longer than 4096 bytes"},
		{"ipset range", `rules: [{name: a, action: deny, ipset: [range.ipset]}]`, "not ranges or ip,port pairs"},
		{"ipset pair", `rules: [{name: a, action: deny, ipset: [pair.ipset]}]`, "not ranges or ip,port pairs"},
		{"duplicate prefix", `rules: [{name: a, action: deny, cidrs: [10.0.0.0/8]}, {name: b, action: deny, cidrs: [10.0.0.0/8]}]`, "10.0.0.0/8 is in rules a and b"},
		{"nested narrower", `rules: [{name: a, action: deny, cidrs: [10.0.0.0/8]}, {name: b, action: deny, proto: tcp, ports: "22", cidrs: [10.1.0.0/16]}]`, "rule b's 10.1.0.0/16 lies inside rule a's 10.0.0.0/8"},
		{"nested v6 narrower", `rules: [{name: a, action: allow, cidrs: ["2001:db8::/32"]}, {name: b, action: allow, proto: udp, cidrs: ["2001:db8:1::/48"]}]`, "rule b's 2001:db8:1::/48 lies inside"},
		{"duplicate name", `rules: [{name: a, action: deny}, {name: a, action: allow}]`, "the name is taken"},
		{"fixed name", `rules: [{name: default, action: deny}]`, "the name is taken"},
		{"no name", `rules: [{action: deny}]`, "a rule needs a name"},
		{"bad action", `rules: [{name: a, action: reject}]`, `action "reject": allow or deny`},
		{"low id", `rules: [{name: a, id: 3, action: deny}]`, "id 3: rule ids are 16 to 4095"},
		{"high id", `rules: [{name: a, id: 5000, action: deny}]`, "id 5000: rule ids are 16 to 4095"},
		{"same id", `rules: [{name: a, id: 20, action: deny}, {name: b, id: 20, action: deny}]`, "id 20 is rule a's too"},
		{"bad proto", `rules: [{name: a, action: deny, proto: sctpx}]`, `proto "sctpx"`},
		{"ports without ports", `rules: [{name: a, action: deny, proto: icmp, ports: "22"}]`, "only TCP and UDP have ports"},
		{"bad range", `rules: [{name: a, action: deny, proto: tcp, ports: "30-20"}]`, `ports "30-20"`},
		{"port 0", `rules: [{name: a, action: deny, proto: tcp, ports: "0"}]`, `ports "0"`},
		{"unknown field", `rules: [{name: a, action: deny, cidr: [10.0.0.0/8]}]`, `unknown field "cidr"`},
		{"prefix_v4", `limits: {prefix_v4: 40}`, "limits.prefix_v4 40"},
		{"huge rate", `limits: {pps: {rate: 10000000000}}`, "limits.pps: rate 10000000000"},
		{"burst alone", `limits: {syn: {burst: 3}}`, "limits.syn: a burst without a rate"},
		{"huge bps burst", `limits: {bps: {rate: 1, burst: 1099511627776}}`, "limits.bps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				cfg.Dir = dir
				_, err = Compile(cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCompile_lists(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "drop.txt"), []byte("; Spamhaus style\n198.18.0.0/15 ; SBL1\n\n2001:db8:dead::/48\n198.18.0.0/15\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "set.ipset"), []byte("create bad hash:net family inet hashsize 1024\nadd bad 100.64.0.0/10\nadd bad 100.64.1.1 timeout 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "fw.yaml")
	if err := os.WriteFile(cfgPath, []byte(`
rules:
  - {name: a, action: deny, files: [drop.txt], ipset: [set.ipset], cidrs: ["::ffff:192.0.2.0/120"]}
  - {name: b, id: 16, action: allow, cidrs: [100.64.2.0/24]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// b asked for 16, so a gets the next free id.
	if id, _ := comp.RuleID("b"); id != 16 {
		t.Errorf("rule b: id %d, want 16", id)
	}
	if id, _ := comp.RuleID("a"); id != 17 {
		t.Errorf("rule a: id %d, want 17", id)
	}
	got := map[string][]string{}
	for _, l := range comp.Lists {
		for i := range l.Len() {
			k, v := l.Entry(i)
			bits := ne.Uint32(k)
			got[l.Map] = append(got[l.Map], fmt.Sprintf("%x/%d=%d", k[4:], bits, ne.Uint32(v)))
		}
	}
	want := map[string][]string{
		"deny4":  {"64400000/10=17", "64400101/32=17", "c0000200/24=17", "c6120000/15=17"},
		"deny6":  {"20010db8dead00000000000000000000/48=17"},
		"allow4": {"64400200/24=16"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lists:\n got %v\nwant %v", got, want)
	}
	if r, _ := comp.Rule(17); r.Prefixes != 6 {
		t.Errorf("rule a: %d prefixes, want 6 (one listed twice)", r.Prefixes)
	}
}

// TestCompile_tooMany: a trie holds MaxPrefixes; more is an error, not a
// map update that fails halfway.
func TestCompile_tooMany(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a list of more than a million prefixes")
	}
	dir := t.TempDir()
	var b strings.Builder
	for i := range MaxPrefixes + 1 {
		fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 10+i>>16, i>>8&255, i&255)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Dir: dir, Rules: []Rule{{Name: "big", Action: "deny", Files: []string{"big.txt"}}}}
	_, err := Compile(cfg)
	if err == nil || !strings.Contains(err.Error(), "more than 1048576 deny prefixes") {
		t.Fatalf("error %v, want too many prefixes", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(testConfig))
	f.Add([]byte(`rules: [{name: a, action: deny, cidrs: ["10.0.0.0/8"], ports: "1-2"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		cfg.Rules = slicesFilterFiles(cfg.Rules)
		if _, err := Compile(cfg); err != nil {
			return
		}
	})
}

// slicesFilterFiles drops file references, which a fuzzer should not
// follow.
func slicesFilterFiles(rs []Rule) []Rule {
	for i := range rs {
		rs[i].Files, rs[i].Ipset = nil, nil
	}
	return rs
}
