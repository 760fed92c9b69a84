package asm

import (
	"fmt"
	"strings"
)

type tokKind uint8

const (
	tEOF   tokKind = iota
	tIdent         // r1, goto, skb, u32, LBB0_2, bpf_map_lookup_elem
	tNum           // 0x1f, 42 (signs are separate tokens)
	tPunct         // = += s>>= ( ) * , [ ] : + - # ...
)

// token is one lexeme of a line. col is its 1-based byte column in the
// original line, for error messages.
type token struct {
	kind tokKind
	text string
	col  int
}

func (t token) is(s string) bool { return t.kind != tEOF && t.text == s }

func (t token) String() string {
	if t.kind == tEOF {
		return "end of line"
	}
	return fmt.Sprintf("%q", t.text)
}

// puncts lists the operators, longest first so that the first match is the
// longest. The "s" forms (s>>=, s<, s/=, ...) are LLVM's signed operators.
var puncts = [...]string{
	"s>>=", "<<=", ">>=", "s>=", "s<=", "s/=", "s%=",
	"+=", "-=", "*=", "/=", "|=", "&=", "%=", "^=", "==", "!=", ">=", "<=", "s>", "s<",
	">", "<", "=", "&", "(", ")", "*", ",", "[", "]", ":", "+", "-", "#",
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '.' || c == '$' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// lex splits s into tokens. col0 is the column of s[0] in line number line
// of the input.
func lex(s string, line, col0 int) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == 's' && i+1 < len(s) && strings.ContainsRune("<>/%", rune(s[i+1])):
			// A signed operator; no identifier starts with s followed by
			// one of these characters.
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			toks = append(toks, token{tIdent, s[i:j], col0 + i})
			i = j
			continue
		case isDigit(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			toks = append(toks, token{tNum, s[i:j], col0 + i})
			i = j
			continue
		}
		matched := false
		for _, p := range puncts {
			if strings.HasPrefix(s[i:], p) {
				toks = append(toks, token{tPunct, p, col0 + i})
				i += len(p)
				matched = true
				break
			}
		}
		if !matched {
			return nil, &Error{Line: line, Column: col0 + i, Msg: fmt.Sprintf("unexpected character %q", s[i])}
		}
	}
	return toks, nil
}
