package firewall

// SYN protection in force, as SYNProtection names it.
const (
	SYNCookiesAndRate = "SYN cookies from XDP while under attack, per-source SYN rate otherwise"
	SYNCookiesOnly    = "SYN cookies from XDP while under attack"
	SYNRateOnly       = "per-source SYN rate"
	SYNNone           = "none"
)

// SYNProtection names the SYN protection a struct config puts in force
// (Compiled.Config, or the value of an applied firewall's config map,
// where Apply cleared the cookie flag if the kernel lacks the helpers):
// SYN cookies while under attack (Options.SYNCookies, with
// Limits.AttackPPS), the per-source SYN rate (Limits.SYN), both, or none.
func SYNProtection(config []byte) string {
	if len(config) < configSize {
		return SYNNone
	}
	cookies := ne.Uint32(config)&flagSYNCookies != 0 && ne.Uint64(config[120:]) != 0
	rate := ne.Uint64(config[40:]) != 0
	switch {
	case cookies && rate:
		return SYNCookiesAndRate
	case cookies:
		return SYNCookiesOnly
	case rate:
		return SYNRateOnly
	}
	return SYNNone
}
