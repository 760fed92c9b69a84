package firewall

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is what the firewall's maps say: Pinned reads an applied
// firewall's, Replayer a user-space one's.
type Stats interface {
	// Counters are the per-rule counters, summed over CPUs.
	Counters() (map[uint32]Counter, error)
	// TopTalkers are the n sources that sent the most packets.
	TopTalkers(n int) ([]Talker, error)
	// UnderAttack says whether the limits are tightened.
	UnderAttack() (bool, error)
	// SamplesLost counts the samples the ring buffer had no room for
	// (a reader too slow for the sampling rate), summed over CPUs.
	SamplesLost() (uint64, error)
}

// Collector is a Prometheus collector of a firewall's metrics. It reads
// the maps on every scrape (Collect), and keeps nothing in between:
//
//	waggle_firewall_rule_packets_total{id,rule,verdict}  per-rule counters
//	waggle_firewall_rule_bytes_total{id,rule,verdict}
//	waggle_firewall_verdict_packets_total{verdict}      pass and drop totals
//	waggle_firewall_verdict_bytes_total{verdict}
//	waggle_firewall_under_attack                         1 while tightened
//	waggle_firewall_samples_lost_total                   samples the ring had no room for
//	waggle_firewall_talker_packets{source,rule}         the top talkers
//	waggle_firewall_talker_bytes{source,rule}
//
// verdict is "pass", "drop" or "tx" (the rule's; "unknown" for an id the
// configuration does not name). The talkers are a bounded set: the top
// ones at the scrape, by packets.
type Collector struct {
	stats Stats
	comp  *Compiled
	top   int

	rulePackets, ruleBytes       *prometheus.Desc
	verdictPackets, verdictBytes *prometheus.Desc
	attack, lost                 *prometheus.Desc
	talkerPackets, talkerBytes   *prometheus.Desc
}

// DefaultTopTalkers is how many talkers a Collector exports unless told.
const DefaultTopTalkers = 10

// NewCollector returns a collector of s's metrics, naming rules by comp
// (the applied configuration) and exporting the top sources (top <= 0:
// DefaultTopTalkers).
func NewCollector(s Stats, comp *Compiled, top int) *Collector {
	if top <= 0 {
		top = DefaultTopTalkers
	}
	ns := "waggle_firewall_"
	return &Collector{
		stats: s, comp: comp, top: top,
		rulePackets:    prometheus.NewDesc(ns+"rule_packets_total", "Packets each rule decided.", []string{"id", "rule", "verdict"}, nil),
		ruleBytes:      prometheus.NewDesc(ns+"rule_bytes_total", "Bytes of the packets each rule decided.", []string{"id", "rule", "verdict"}, nil),
		verdictPackets: prometheus.NewDesc(ns+"verdict_packets_total", "Packets passed and dropped.", []string{"verdict"}, nil),
		verdictBytes:   prometheus.NewDesc(ns+"verdict_bytes_total", "Bytes of the packets passed and dropped.", []string{"verdict"}, nil),
		attack:         prometheus.NewDesc(ns+"under_attack", "1 while the global packet rate is over the attack mark and the limits are tightened.", nil, nil),
		lost:           prometheus.NewDesc(ns+"samples_lost_total", "Packet samples the ring buffer had no room for (its reader too slow for the sampling rate).", nil, nil),
		talkerPackets:  prometheus.NewDesc(ns+"talker_packets", "Packets of the sources that sent the most (the top talkers at the scrape).", []string{"source", "rule"}, nil),
		talkerBytes:    prometheus.NewDesc(ns+"talker_bytes", "Bytes of the top talkers.", []string{"source", "rule"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rulePackets, c.ruleBytes, c.verdictPackets, c.verdictBytes, c.attack, c.lost, c.talkerPackets, c.talkerBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the maps. A map it
// cannot read gives an invalid metric, which fails the scrape with the
// error.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counters, err := c.stats.Counters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.rulePackets, err)
	} else {
		total := map[string]Counter{"pass": {}, "drop": {}}
		for id, n := range counters {
			v := c.comp.VerdictOf(id)
			ids, name := strconv.FormatUint(uint64(id), 10), c.comp.RuleName(id)
			ch <- prometheus.MustNewConstMetric(c.rulePackets, prometheus.CounterValue, float64(n.Packets), ids, name, v)
			ch <- prometheus.MustNewConstMetric(c.ruleBytes, prometheus.CounterValue, float64(n.Bytes), ids, name, v)
			t := total[v]
			t.Packets += n.Packets
			t.Bytes += n.Bytes
			total[v] = t
		}
		for v, t := range total {
			ch <- prometheus.MustNewConstMetric(c.verdictPackets, prometheus.CounterValue, float64(t.Packets), v)
			ch <- prometheus.MustNewConstMetric(c.verdictBytes, prometheus.CounterValue, float64(t.Bytes), v)
		}
	}
	if on, err := c.stats.UnderAttack(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.attack, err)
	} else {
		v := 0.0
		if on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.attack, prometheus.GaugeValue, v)
	}
	if n, err := c.stats.SamplesLost(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.lost, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(n))
	}
	ts, err := c.stats.TopTalkers(c.top)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.talkerPackets, err)
		return
	}
	for _, t := range ts {
		src, rule := t.Addr.String(), c.comp.RuleName(t.Rule)
		ch <- prometheus.MustNewConstMetric(c.talkerPackets, prometheus.GaugeValue, float64(t.Packets), src, rule)
		ch <- prometheus.MustNewConstMetric(c.talkerBytes, prometheus.GaugeValue, float64(t.Bytes), src, rule)
	}
}

// VerdictOf returns what rule id does to a packet: "pass", "drop" or "tx"
// (answered, RuleSYNCookie), or
// "unknown" for an id no rule has.
func (c *Compiled) VerdictOf(id uint32) string {
	r, ok := c.Rule(id)
	if !ok {
		return "unknown"
	}
	switch r.Action {
	case "allow", "pass":
		return "pass"
	case "deny", "drop":
		return "drop"
	case "tx":
		return "tx"
	}
	// Options: the program gives RuleFragment only when it drops
	// fragments; RuleMalformed passes unless told to drop.
	if id == RuleMalformed && len(c.Config) >= 4 && ne.Uint32(c.Config)&flagDropMalformed == 0 {
		return "pass"
	}
	return "drop"
}
