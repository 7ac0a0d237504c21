//go:build amd64 && !purego

package kernel

import "syscall"

// amxPermit asks Linux for permission to use AMX tile data in this process
// (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), which the kernel
// requires before the first tile instruction; it reports whether it was
// granted.
func amxPermit() bool {
	const archReqXcompPerm, xfeatureXtiledata = 0x1023, 18
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0)
	return errno == 0
}
