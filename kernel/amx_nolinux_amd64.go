//go:build amd64 && !purego && !linux

package kernel

// amxPermit reports false: terse uses AMX tiles only on Linux, where the
// process asks for them.
func amxPermit() bool { return false }
