//go:build !linux

package waggle_test

import "time"

func clockTAI() (int64, error) { return time.Now().UnixNano(), nil }
