package main

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
)

func (e *env) asmCmd() *cobra.Command {
	var out, format string
	var hexOut, check bool
	cmd := &cobra.Command{
		Use:   "asm FILE",
		Short: "Assemble eBPF text (LLVM/kernel syntax or the conformance dialect) to bytecode",
		Long: `Assemble eBPF text to little-endian bytecode.

FILE ("-" for stdin) is in the syntax llvm-objdump -d prints and kernel
verifier logs use ("r0 = 1", "if r1 s> 0x5 goto +3", "*(u32 *)(r10 - 4) = r1",
"lock *(u64 *)(r1 + 0) += r2", labels), or in the conformance suite's dialect
("mov %r0, 1", "ldxw %r0, [%r1+4]"), chosen by --format or by whether the text
uses %r registers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != formatAuto && format != formatAsm && format != formatConformance {
				return fmt.Errorf("--format is %q, want auto, asm or conformance", format)
			}
			p, err := e.readProgram(args[0], format, "")
			if err != nil {
				return err
			}
			if check {
				if err := isa.ValidateProgram(p.insns); err != nil {
					return fmt.Errorf("%s: %w", p.source, err)
				}
			}
			code := isa.Encode(p.insns)
			if hexOut {
				code = []byte(hexWords(code))
			}
			if out == "" || out == "-" {
				if !hexOut && isTerminal(e.stdout) {
					return fmt.Errorf("refusing to write bytecode to a terminal: use -o FILE or --hex")
				}
				_, err := e.stdout.Write(code)
				return err
			}
			return os.WriteFile(out, code, 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write bytecode to `FILE` (default stdout)")
	cmd.Flags().StringVar(&format, "format", formatAuto, "input syntax: auto, asm or conformance")
	cmd.Flags().BoolVar(&hexOut, "hex", false, "write hex, one 8-byte slot per line, instead of binary")
	cmd.Flags().BoolVar(&check, "check", true, "validate the program (reserved fields, jump targets, final exit)")
	return cmd
}

// hexWords prints bytecode as one slot per line: "b7 00 00 00 01 00 00 00".
func hexWords(code []byte) string {
	var b strings.Builder
	for i := 0; i+8 <= len(code); i += 8 {
		for j := 0; j < 8; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(hex.EncodeToString(code[i+j : i+j+1]))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (e *env) disasmCmd() *cobra.Command {
	var format, section string
	var listing, labels bool
	cmd := &cobra.Command{
		Use:   "disasm FILE",
		Short: "Disassemble an ELF object's sections or raw bytecode",
		Long: `Disassemble eBPF bytecode into the text llvm-objdump -d prints.

FILE ("-" for stdin) is an ELF object (every program section, or the one named
by --section), raw bytecode (.bin), hex text (.hex, or inline hex when no such
file exists), or a conformance .data file. The output re-assembles with
"waggle asm" to the same bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			style := asm.Plain
			if listing {
				style |= asm.Listing
			}
			if labels {
				style |= asm.Labels
			}
			data, err := os.ReadFile(args[0])
			if err == nil && bytes.HasPrefix(data, []byte(elf.ELFMAG)) && section == "" {
				return e.disasmELF(args[0], data, style)
			}
			p, err := e.readProgram(args[0], format, section)
			if err != nil {
				return err
			}
			fmt.Fprint(e.stdout, asm.Disassemble(p.insns, style))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", formatAuto, "input format: "+strings.Join(formats, ", "))
	cmd.Flags().StringVar(&section, "section", "", "disassemble only this ELF `SECTION`")
	cmd.Flags().BoolVar(&listing, "listing", false, "print slot numbers and raw bytes as llvm-objdump does")
	cmd.Flags().BoolVar(&labels, "labels", false, "name jump targets with labels instead of offsets")
	return cmd
}

// disasmELF prints every program section of an object, each function under
// its symbol name, as llvm-objdump -d lays it out.
func (e *env) disasmELF(name string, data []byte, style asm.Style) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: not a valid ELF object: %w", name, err)
	}
	if f.Machine != elf.EM_BPF {
		return fmt.Errorf("%s: ELF machine is %v, not EM_BPF", name, f.Machine)
	}
	progs := programSections(f)
	if len(progs) == 0 {
		return fmt.Errorf("%s: no executable section with instructions", name)
	}
	for _, s := range progs {
		b, err := s.Data()
		if err != nil {
			return fmt.Errorf("%s: section %s: %w", name, s.Name, err)
		}
		insns, err := isa.DecodeOrder(b, f.ByteOrder)
		if err != nil {
			return fmt.Errorf("%s: section %s: %w", name, s.Name, err)
		}
		fmt.Fprintf(e.stdout, "Disassembly of section %s:\n", s.Name)
		// Disassemble the section whole, so jumps and calls between its
		// functions resolve, and put each function's name before its first
		// instruction.
		syms := symbols(f, s)
		slot := 0
		for _, line := range strings.SplitAfter(asm.Disassemble(insns, style), "\n") {
			if line == "" {
				continue
			}
			if isLabelLine(line) {
				fmt.Fprint(e.stdout, line)
				continue
			}
			if n, ok := syms[slot]; ok {
				fmt.Fprintf(e.stdout, "\n%016x <%s>:\n", slot*isa.InstructionSize, n)
			}
			fmt.Fprint(e.stdout, line)
			if slot < len(insns) {
				slot += insns[slot].Width()
			}
		}
		if n := relocationCount(f, s); n > 0 {
			fmt.Fprintf(e.stdout, "\n; %d relocations apply to this section (maps, global data or calls): their instructions show unrelocated immediates\n", n)
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}

// isLabelLine reports whether a line of Disassemble's output is a label
// ("L12:") rather than an instruction.
func isLabelLine(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasSuffix(l, ":") && !strings.ContainsAny(l, " \t")
}
