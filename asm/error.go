package asm

import "fmt"

// Error is a mistake in assembly text: a syntax error, an unknown register,
// a value out of range, an undefined label. Its message names the line, and
// the offending token where there is one, e.g.
//
//	line 3: unknown register "r11"
//	line 7: undefined label "out"
//	line 2: immediate 0x1ffffffff does not fit in 32 bits
type Error struct {
	Line   int    // 1-based line of the input
	Column int    // 1-based byte column of the offending token, 0 when unknown
	Msg    string // what is wrong, and what to write instead when that is known
}

// Error returns "line N: message".
func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }
