//go:build !linux

package compress

// evict is a no-op where madvise(MADV_PAGEOUT) is not available.
func evict([]byte) {}
