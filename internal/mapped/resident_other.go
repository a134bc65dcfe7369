//go:build !linux

package mapped

import (
	"context"
	"os"
)

// readResident reads the whole file into memory.
func readResident(ctx context.Context, f *os.File, size int64) ([]byte, func() error, error) {
	data := make([]byte, size)
	if err := readChunks(ctx, f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
