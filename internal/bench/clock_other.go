//go:build !linux

package bench

func threadTime() (int64, error) { return 0, errNoClock }

func lockThread() func() { return func() {} }

func loadKernel(Case) (*runner, error) { return nil, errNoClock }
