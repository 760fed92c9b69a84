package waggle_test

import "golang.org/x/sys/unix"

func clockTAI() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_TAI, &ts); err != nil {
		return 0, err
	}
	return ts.Nano(), nil
}
