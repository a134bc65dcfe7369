//go:build linux

package mapped

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// madvHugepage is MADV_HUGEPAGE: back the region with 2 MB pages where the
// kernel allows it (transparent huge pages in "madvise" mode).
const madvHugepage = 14

// readResident reads the whole file into anonymous memory backed by huge
// pages where possible. The pages are touched now, so later passes over the
// weights cost no page faults: on virtual machines where a fault is expensive
// this is several times faster than a file mapping.
func readResident(ctx context.Context, f *os.File, size int64) ([]byte, func() error, error) {
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("file of %d bytes is too large", size)
	}
	data, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, fmt.Errorf("allocating %d bytes: %w", size, err)
	}
	_ = syscall.Madvise(data, madvHugepage) // best effort
	if err := readChunks(ctx, f, data); err != nil {
		syscall.Munmap(data)
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
