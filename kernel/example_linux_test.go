package kernel_test

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/kernel"
)

// ExampleLoadCollection loads the counter example into the running kernel
// and prints what Linux made of it. It needs root, so it has no Output
// comment: go test compiles it but does not run it (TestLoadCollection_*
// run the same calls as root, and skip without it).
func ExampleLoadCollection() {
	c, err := kernel.LoadCollection("../examples/counter/counter.o", &kernel.CollectionOptions{
		// PinPath: "/sys/fs/bpf/counter", // keep them after the process
		CrossCheck: true, // waggle's verifier judges each program too
	})
	var le *kernel.LoadError
	switch {
	case errors.As(err, &le):
		for _, r := range le.Refused {
			fmt.Printf("%+v", r) // the verifier's log, source line, both verdicts
		}
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer c.Close()
	for _, p := range c.Programs {
		info, err := p.Program.Info()
		if err != nil {
			fmt.Println(err)
			return
		}
		n, _ := info.VerifiedInstructions()
		fmt.Printf("%s: %v, %d instructions verified, waggle %v\n", p.Name, p.Type, n, p.Waggle)
	}
	for _, m := range c.Maps {
		fmt.Printf("map %s: %v\n", m.Name, m.Map.Type())
	}
}
