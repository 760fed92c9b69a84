package waggle_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/hook/hook.c -o testdata/hook/hook.o

// Request is the context of the http_request hook: the same layout as
// struct request in testdata/hook/hook.c.
type Request struct {
	PID     uint32
	Method  [8]byte
	Path    []byte
	Verdict int32 `bpf:",rw"`
}

// A Go program declares its own hook point, loads a clang-built program for
// it, and runs the program on each request, reading back what it wrote.
func Example_userHook() {
	hook, err := progtype.NewHook[Request]("http_request")
	if err != nil {
		panic(err)
	}
	coll, err := waggle.LoadCollection("testdata/hook/hook.o", &waggle.CollectionOptions{
		Hooks: map[string]*progtype.Kind{"waggle/http_request": hook.Kind()},
	})
	if err != nil {
		panic(err)
	}
	defer coll.Close()
	prog := coll.Programs["deny_admin"]
	for _, path := range []string{"/admin/users", "/index.html", "/admin"} {
		req := Request{PID: 42, Path: []byte(path)}
		r0, err := hook.Run(prog.Exec(), &req, progtype.Input{})
		fmt.Println(path, r0, req.Verdict, err)
	}
	var denied uint64
	if err := coll.Maps["denied"].Lookup(uint32(0), &denied); err != nil {
		panic(err)
	}
	fmt.Println("denied:", denied)
	// Output:
	// /admin/users 1 -1 <nil>
	// /index.html 0 0 <nil>
	// /admin 1 -1 <nil>
	// denied: 2
}

func TestHook_wrongContext(t *testing.T) {
	// A hook whose context is too small for what the program reads is
	// refused at load, naming the access.
	type Small struct{ PID uint32 }
	hook, err := progtype.NewHook[Small]("small")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := waggle.LoadCollection("testdata/hook/hook.o", &waggle.CollectionOptions{
		Hooks: map[string]*progtype.Kind{"deny_admin": hook.Kind()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	err = coll.Programs["deny_admin"].Prepare()
	var pe *waggle.PrepareError
	if !errors.As(err, &pe) || pe.Program != "deny_admin" {
		t.Fatalf("a program reading past its hook's context prepared: %v", err)
	}
	t.Log(err)
	// Without the hook, the section names no program type.
	coll2, err := waggle.LoadCollection("testdata/hook/hook.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll2.Close()
	if err := coll2.Programs["deny_admin"].Prepare(); err == nil {
		t.Fatal("prepared a user-hook program without its hook")
	} else {
		t.Log(err)
	}
}
