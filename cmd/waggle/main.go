// Command waggle runs, assembles, disassembles and tests eBPF programs in
// user space.
//
//	waggle asm prog.s -o prog.bin        assemble LLVM/kernel syntax to bytecode
//	waggle disasm prog.o                 disassemble an ELF object or bytecode
//	waggle run prog.s --mem-hex "01 02"  run a program, print r0
//	waggle conformance DIR               run the eBPF conformance suite in-process
//	waggle conformance-plugin            be a plugin of the suite's own runner
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, "waggle:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "waggle:", err)
		return 1
	}
	return 0
}

// exitError ends the command with a status and, optionally, a message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// env carries the command's streams, so tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "waggle",
		Short:         "eBPF in Go: assemble, verify, run and test eBPF programs in user space",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(e.asmCmd(), e.disasmCmd(), e.runCmd(), e.testCmd(), e.conformanceCmd(), e.pluginCmd(), e.verifyCmd(), e.benchCmd(),
		e.loadCmd(), e.attachCmd(), e.detachCmd(), e.progCmd(), e.mapCmd(), e.linkCmd(), e.btfCmd(), e.featureCmd(), e.firewallCmd())
	return root
}
