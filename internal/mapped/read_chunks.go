package mapped

import (
	"context"
	"io"
	"os"
)

// residentChunk is how much readChunks reads between checks of its context.
const residentChunk = 64 << 20

// readChunks fills data from the start of f, checking ctx between chunks.
func readChunks(ctx context.Context, f *os.File, data []byte) error {
	for off := 0; off < len(data); off += residentChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+residentChunk, len(data))
		if _, err := io.ReadFull(io.NewSectionReader(f, int64(off), int64(end-off)), data[off:end]); err != nil {
			return err
		}
	}
	return nil
}
