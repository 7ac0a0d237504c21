//go:build linux

package compress

import (
	"os"
	"syscall"
	"unsafe"
)

// madvPageout is Linux's MADV_PAGEOUT (5.4 and later): reclaim the pages
// now. File-backed pages (a memory-mapped checkpoint) are dropped and read
// back from the file if touched again; anonymous pages are kept (or
// swapped), so the data never changes.
const madvPageout = 21

// evict tells the kernel that b's whole pages are not needed for now, so
// that a memory-mapped checkpoint's weights leave the resident set once
// their block is compressed. It changes no data and errors are ignored (an
// older kernel, memory that cannot be paged out).
func evict(b []byte) {
	page := uintptr(os.Getpagesize())
	if len(b) < int(page) {
		return
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	lo := (p + page - 1) &^ (page - 1)
	hi := (p + uintptr(len(b))) &^ (page - 1)
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(b[lo-p:hi-p], madvPageout)
}
