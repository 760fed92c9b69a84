//go:build !linux

package kernel

import "github.com/waggle-bpf/waggle/loader"

// LoadCollection fails outside Linux with an error wrapping ErrNotSupported.
func LoadCollection(string, *CollectionOptions) (*LoadedCollection, error) { return nil, errNotLinux }

// LoadObject fails outside Linux with an error wrapping ErrNotSupported.
func LoadObject(*loader.Object, *CollectionOptions) (*LoadedCollection, error) {
	return nil, errNotLinux
}
