package fuzzgen

import "github.com/waggle-bpf/waggle/isa"

// helperCall (PtrConfig.Helpers): one call of a helper beyond the map
// operations, with arguments the verifier accepts but whose values a run
// may refuse (a size that is not a multiple of 4, an offset past the
// packet, a shrink below the Ethernet header, too many loop iterations),
// so that engines are compared on the helper's error returns too. The
// result is mixed into the accumulator; a helper that fills a buffer has
// the buffer read back.
//
//	loop              bpf_loop(n, cb, &stack, flags): cb adds its index into
//	                  a stack word of the caller, and may stop early
//	csum_diff         bpf_csum_diff(stack, n, stack, m, seed)
//	csum_diff-pkt     bpf_csum_diff(packet, n, NULL, 0, seed) behind a check
//	skb_store_bytes   bpf_skb_store_bytes(skb, off, stack, n, flags)
//	skb_load_bytes_relative  (skb, off, stack, n, mac or network header)
//	get_hash_recalc   bpf_get_hash_recalc(skb)
//	get_prandom_u32, get_smp_processor_id  (the JIT inlines both)
//	xdp_adjust_tail   bpf_xdp_adjust_tail(xdp, delta)
//	xdp_load_bytes, xdp_store_bytes  (xdp, off, stack, n)
func (g *pgen) helperCall() {
	vs := []string{"loop", "loop", "get_prandom_u32", "get_smp_processor_id"}
	switch g.typ {
	case XDP:
		vs = append(vs, "csum_diff", "csum_diff-pkt", "xdp_adjust_tail", "xdp_load_bytes", "xdp_store_bytes")
	case SchedCLS:
		vs = append(vs, "csum_diff", "csum_diff-pkt", "skb_store_bytes", "skb_load_bytes_relative", "get_hash_recalc")
	case SocketFilter:
		vs = append(vs, "skb_load_bytes_relative")
	}
	v := vs[g.pick(len(vs))]
	g.name("helper", v, false)
	stackBuf := func(r isa.Register) { g.e(movReg(r, isa.R10), alu64K(isa.ALUAdd, r, stackValue)) }
	readBack := func() {
		g.e(ldx(isa.SizeDW, isa.R1, isa.R10, stackValue))
		g.mix(isa.R1)
	}
	// A length of 1 to max, sometimes taken from the accumulator (bounded).
	length := func(r isa.Register, max int32) {
		if g.chance(3) {
			g.e(movReg(r, rAcc), alu64K(isa.ALUAnd, r, max-1), alu64K(isa.ALUAdd, r, 1))
			return
		}
		g.e(movImm(r, 1+int32(g.pick(int(max)))))
	}
	offset := func(r isa.Register) { g.e(movImm(r, int32(g.pick(64)))) }
	switch v {
	case "loop":
		g.loopCall()
		return
	case "csum_diff":
		// from and to in the initialised stack buffer [-64, 0); sizes
		// multiples of 4 but now and then not (the helper refuses them).
		sizes := []int32{0, 4, 8, 12, 16, 20, 24, 32, 6}
		stackBuf(isa.R1)
		g.e(movImm(isa.R2, sizes[g.pick(len(sizes))]))
		g.e(movReg(isa.R3, isa.R10), alu64K(isa.ALUAdd, isa.R3, -32))
		g.e(movImm(isa.R4, sizes[g.pick(len(sizes)-1)]))
		g.e(movReg(isa.R5, rAcc))
		g.e(callHelper(fnCsumDiff))
		g.mix(isa.R0)
	case "csum_diff-pkt":
		skip := g.a.newLabel()
		n := 4 * int32(1+g.pick(8))
		g.pktPtrs(isa.R1, isa.R3)
		g.e(movReg(isa.R4, isa.R1), alu64K(isa.ALUAdd, isa.R4, n))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.e(movImm(isa.R2, n), movImm(isa.R3, 0), movImm(isa.R4, 0), movImm(isa.R5, g.imm32small()))
		g.e(callHelper(fnCsumDiff))
		g.mix(isa.R0)
		g.a.bind(skip)
	case "skb_store_bytes":
		flags := []int32{0, 0, 1, 2} // BPF_F_RECOMPUTE_CSUM, BPF_F_INVALIDATE_HASH
		g.e(movReg(isa.R1, rCtx))
		offset(isa.R2)
		stackBuf(isa.R3)
		length(isa.R4, 32)
		g.e(movImm(isa.R5, flags[g.pick(len(flags))]))
		g.e(callHelper(fnSkbStoreBytes))
		g.mix(isa.R0)
	case "skb_load_bytes_relative":
		g.e(movReg(isa.R1, rCtx))
		offset(isa.R2)
		stackBuf(isa.R3)
		length(isa.R4, 32)
		g.e(movImm(isa.R5, int32(g.pick(2)))) // BPF_HDR_START_MAC, BPF_HDR_START_NET
		g.e(callHelper(fnSkbLoadBytesRelative))
		g.mix(isa.R0)
		readBack()
	case "get_prandom_u32", "get_smp_processor_id":
		// The JIT inlines both; the kernel's numbers are its own.
		if v == "get_prandom_u32" {
			g.e(callHelper(fnGetPrandomU32))
		} else {
			g.e(callHelper(fnGetSmpProcessorID))
		}
		g.mix(isa.R0)
		if g.kernelDiff == "" {
			g.kernelDiff = "bpf_" + v + ": the kernel's random state and CPU are its own"
		}
	case "get_hash_recalc":
		g.e(movReg(isa.R1, rCtx), callHelper(fnGetHashRecalc))
		g.mix(isa.R0)
		if g.kernelDiff == "" {
			g.kernelDiff = "bpf_get_hash_recalc: Linux keys its flow hash at random at boot"
		}
	case "xdp_adjust_tail":
		deltas := []int32{-1, -4, -13, -20, -64, 0, 4, 16, 100}
		g.e(movReg(isa.R1, rCtx), movImm(isa.R2, deltas[g.pick(len(deltas))]), callHelper(fnXDPAdjustTail))
		g.mix(isa.R0)
	case "xdp_load_bytes", "xdp_store_bytes":
		g.e(movReg(isa.R1, rCtx))
		offset(isa.R2)
		stackBuf(isa.R3)
		length(isa.R4, 32)
		if v == "xdp_load_bytes" {
			g.e(callHelper(fnXDPLoadBytes))
			g.mix(isa.R0)
			readBack()
		} else {
			g.e(callHelper(fnXDPStoreBytes))
			g.mix(isa.R0)
		}
	}
}

// loopCall: bpf_loop(n, cb, &buf, flags), where cb(i, buf) adds i (or
// i*31) into the first word of the caller's stack buffer and returns 0,
// or 1 to stop once i reaches a bound. n is small, bounded by the
// accumulator, or past the helper's limit of 1<<23 (an error, no call);
// flags are now and then not 0 (an error).
func (g *pgen) loopCall() {
	switch g.pick(6) {
	case 0:
		g.e(movReg(isa.R1, rAcc), alu64K(isa.ALUAnd, isa.R1, 15))
	case 1:
		g.e(movImm(isa.R1, 1<<23+1))
		if g.kernelDiff == "" {
			g.kernelDiff = "bpf_loop's -E2BIG: Linux's inlined bpf_loop returns it zero-extended (testdata/kernel-bugs/README.md)"
		}
	default:
		g.e(movImm(isa.R1, int32(g.pick(10))))
	}
	cb := g.a.newLabel()
	g.a.funcRef(isa.R2, cb)
	g.e(movReg(isa.R3, isa.R10), alu64K(isa.ALUAdd, isa.R3, stackValue))
	flags := int32(0)
	if g.chance(8) {
		flags = 1
	}
	g.e(movImm(isa.R4, flags), callHelper(fnLoop))
	g.mix(isa.R0)
	g.e(ldx(isa.SizeDW, isa.R1, isa.R10, stackValue))
	g.mix(isa.R1)
	mul := g.chance(2)
	stop := int32(-1)
	if g.chance(2) {
		stop = int32(g.pick(6))
	}
	g.subs = append(g.subs, subprog{label: cb, emit: func() {
		//	r3 = *(u64 *)(r2 + 0); [r3 *= 31;] r3 += r1; *(u64 *)(r2 + 0) = r3
		//	r0 = 0; [if r1 < stop goto +1; r0 = 1;] exit
		g.e(ldx(isa.SizeDW, isa.R3, isa.R2, 0))
		if mul {
			g.e(alu64K(isa.ALUMul, isa.R3, 31))
		}
		g.e(alu64X(isa.ALUAdd, isa.R3, isa.R1), stx(isa.SizeDW, isa.R2, 0, isa.R3), movImm(isa.R0, 0))
		if stop >= 0 {
			g.e(isa.Instruction{Op: jmpOp(true, isa.JumpLT, isa.SourceK), Dst: isa.R1, Imm: stop, Off: 1}, movImm(isa.R0, 1))
		}
		g.e(isa.Instruction{Op: isa.OpExit})
	}})
}
