//go:build unix && !linux

package mem

// mapNoReserve is Linux's MAP_NORESERVE; other unixes commit lazily anyway.
const mapNoReserve = 0
