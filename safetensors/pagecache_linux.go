package safetensors

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Evict writes a file's data to disk and drops its pages from the page
// cache, so that the next mapping reads it afresh.
//
// Why: pages cached by write(2) are 4 KB folios, and a mapping of them is
// made of 4 KB pages; pages that Linux reads in itself (6.x kernels, ext4,
// xfs...) come in large folios that map as 2 MB huge pages. Decoding reads
// every weight once per token, and under virtualization each 4 KB page costs
// a nested page walk: measured on a Firecracker VM, passes over a 3 GB
// mapping ran at 1.3-2 GB/s right after writing the file and at 25-34 GB/s
// once it was evicted and read again. Call it on a checkpoint file that was
// just written or downloaded.
func Evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("%s: fdatasync: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("%s: fadvise: %w", path, err)
	}
	return nil
}
