//go:build linux && amd64

#include "go_asm.h"
#include "textflag.h"

// func Jump(pc, stack uintptr, ec *ExecCtx)
//
// NOFRAME: SP points at the return address, so the code's exit
// (MOVQ GoSP, SP; MOVQ GoBP, BP; RET) returns from Jump itself.
TEXT ·Jump(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ pc+0(FP), AX
	MOVQ stack+8(FP), BX
	MOVQ ec+16(FP), R12
	MOVQ SP, ExecCtx_GoSP(R12)
	MOVQ BP, ExecCtx_GoBP(R12)
	MOVQ BX, SP
	JMP  AX
