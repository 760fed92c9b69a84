package main

import (
	"fmt"
	"strings"

	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// loadNet returns the host --net names: a JSON or YAML file, "host" for
// the namespace waggle runs in, "netns:NAME" for a named namespace
// (/run/netns/NAME), or nil for "" (the empty host).
func loadNet(spec string) (*netenv.Host, error) {
	var c *netenv.Config
	var err error
	switch {
	case spec == "":
		return nil, nil
	case spec == "host":
		c, err = netenv.ReadNamespace("")
	case strings.HasPrefix(spec, "netns:"):
		c, err = netenv.ReadNamespace("/run/netns/" + strings.TrimPrefix(spec, "netns:"))
	default:
		return netenv.Load(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("--net %s: %w", spec, err)
	}
	h, err := netenv.New(c)
	if err != nil {
		return nil, fmt.Errorf("--net %s: %w", spec, err)
	}
	return h, nil
}

// netEffects describes what a run asked of the network, for "waggle run
// --data-in": the redirect target, the tunnel metadata set, the socket
// assigned, the clones sent. nil when there is nothing to say.
func netEffects(out *progtype.Output) map[string]any {
	m := map[string]any{}
	if rd := out.Redirect; rd != nil {
		r := map[string]any{"ifindex": rd.Ifindex, "flags": rd.Flags}
		switch {
		case rd.Neigh:
			r["neigh"] = true
			if rd.Nexthop.IsValid() {
				r["nexthop"] = rd.Nexthop.String()
			}
		case rd.Peer:
			r["peer"] = true
			r["peer_ifindex"] = rd.PeerIfindex
		case rd.Map != nil:
			r["map"], r["key"] = rd.Map.Spec().Name, rd.Key
		}
		m["redirect"] = r
	}
	if t := out.Tunnel; t != nil && t.TX {
		m["tunnel"] = t
	}
	if s := out.Assigned; s != nil {
		m["assigned"] = s
	}
	if len(out.Clones) > 0 {
		var cs []map[string]any
		for _, c := range out.Clones {
			cs = append(cs, map[string]any{"ifindex": c.Ifindex, "flags": c.Flags, "len": len(c.Data)})
		}
		m["clones"] = cs
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
