//go:build !linux

package kernel

// ProgramGPLCompatible fails outside Linux with an error wrapping ErrNotSupported.
func ProgramGPLCompatible(int) (bool, error) { return false, errNotLinux }

// ProgramXlatedBytes fails outside Linux with an error wrapping ErrNotSupported.
func ProgramXlatedBytes(int) ([]byte, error) { return nil, errNotLinux }

// MapBTFTypes fails outside Linux with an error wrapping ErrNotSupported.
func MapBTFTypes(int) (btfID, keyType, valueType uint32, err error) {
	return 0, 0, 0, errNotLinux
}
