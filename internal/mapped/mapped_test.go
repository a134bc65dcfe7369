package mapped

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpen: a file mapped and read resident gives the same bytes, across
// the 64 MiB chunks of a resident read; a cancelled context stops a
// resident read; a missing file names itself.
func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	want := make([]byte, residentChunk+12345)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, resident := range []bool{false, true} {
		got, release, err := Open(context.Background(), path, resident)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("resident %v: %v, equal %v", resident, err, bytes.Equal(got, want))
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Open(ctx, path, true); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, _, err := Open(context.Background(), path+".missing", false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o644)
	if got, _, err := Open(context.Background(), empty, false); err != nil || len(got) != 0 {
		t.Errorf("empty: %d bytes, %v", len(got), err)
	}
}
