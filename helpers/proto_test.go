package helpers_test

import (
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
)

func TestArgTypeString(t *testing.T) {
	for _, tc := range []struct {
		a    helpers.ArgType
		want string
	}{
		{helpers.ArgDontCare, "ARG_DONTCARE"},
		{helpers.ArgPtrToUninitMem, "ARG_PTR_TO_MEM|MEM_UNINIT|MEM_WRITE"},
		{helpers.ArgPtrToStackOrNull, "ARG_PTR_TO_STACK|PTR_MAYBE_NULL"},
		{helpers.ArgPtrToRingbufMem | helpers.ArgRelease, "ARG_PTR_TO_RINGBUF_MEM|OBJ_RELEASE"},
		{helpers.ArgPtrToFixedSizeMem | helpers.ArgAligned, "ARG_PTR_TO_MEM|MEM_FIXED_SIZE|MEM_ALIGNED"},
		{helpers.ArgType(0xfe), "ARG_?"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#x: %q, want %q", uint32(tc.a), got, tc.want)
		}
	}
	if got, want := helpers.RetPtrToRingbufMemOrNull.String(), "RET_PTR_TO_MEM|PTR_MAYBE_NULL|MEM_RINGBUF"; got != want {
		t.Errorf("RetPtrToRingbufMemOrNull: %q, want %q", got, want)
	}
}

// TestGenericProtos checks the acquire/release pairs and the callbacks of
// the generic helpers; TestProtosMatchLinux in package progtype compares
// every field with the kernel's source.
func TestGenericProtos(t *testing.T) {
	defs := helpers.Generic()
	get := func(id int32) helpers.Proto {
		d, ok := defs.ByID(id)
		if !ok {
			t.Fatalf("no helper %d", id)
		}
		return d.Proto
	}
	if p := get(helpers.IDRingbufReserve); !p.Acquire || p.Ret != helpers.RetPtrToRingbufMemOrNull || p.RetSizeArg != 1 {
		t.Errorf("ringbuf_reserve: %+v", p)
	}
	for _, id := range []int32{helpers.IDRingbufSubmit, helpers.IDRingbufDiscard} {
		p := get(id)
		if i, ok := p.Released(); !ok || i != 0 {
			t.Errorf("%s releases argument %d, %v", helpers.Name(id), i, ok)
		}
	}
	if _, ok := get(helpers.IDMapLookupElem).Released(); ok {
		t.Error("map_lookup_elem releases an argument")
	}
	if !get(helpers.IDTailCall).ChangesPktData {
		t.Error("tail_call does not change packet data")
	}
	for _, id := range []int32{helpers.IDLoop, helpers.IDForEachMapElem} {
		p := get(id)
		c, ok := helpers.CallbackOf(id)
		if !ok || p.Callback == nil || *p.Callback != c {
			t.Fatalf("%s: callback %+v, CallbackOf %+v", helpers.Name(id), p.Callback, c)
		}
		if p.Args[c.Arg] != helpers.ArgPtrToFunc {
			t.Errorf("%s: argument %d is %v", helpers.Name(id), c.Arg, p.Args[c.Arg])
		}
		// Both pass their callback context (argument 3) on.
		last := c.Regs[1]
		if id == helpers.IDForEachMapElem {
			last = c.Regs[3]
		}
		if last != (helpers.CallbackReg{Kind: helpers.CallbackCallerArg, Arg: 2}) || c.RetMin != 0 || c.RetMax != 1 {
			t.Errorf("%s: %+v", helpers.Name(id), c)
		}
	}
	for _, id := range []int32{helpers.IDFindVMA, helpers.IDUserRingbufDrain, helpers.IDTimerSetCallback} {
		if _, ok := helpers.CallbackOf(id); !ok {
			t.Errorf("%s: no callback signature", helpers.Name(id))
		}
	}
	if c, _ := helpers.CallbackOf(helpers.IDTimerSetCallback); !c.Async || c.RetMax != 0 {
		t.Errorf("timer callback: %+v", c)
	}
	if _, ok := helpers.CallbackOf(helpers.IDMapLookupElem); ok {
		t.Error("map_lookup_elem has a callback")
	}
}
