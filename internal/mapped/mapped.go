// Package mapped gives a weights file's bytes to its parser (safetensors,
// GGUF): memory-mapped read-only by default, so that the weights stay in
// the page cache in their stored format and load in no time; or read into
// anonymous memory ("resident"), which some virtual machines page through
// several times faster. Either way the bytes are released by the returned
// function.
package mapped

import (
	"context"
	"fmt"
	"os"
)

// Open returns the contents of the file at path, mapped or (resident) read
// in chunks of 64 MiB between which ctx is checked, and the function that
// releases them.
func Open(ctx context.Context, path string, resident bool) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	var release func() error
	if resident {
		data, release, err = readResident(ctx, f, st.Size())
	} else {
		data, release, err = mapFile(f, st.Size())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, release, nil
}
