package helpers_test

import "fmt"

func asmf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
