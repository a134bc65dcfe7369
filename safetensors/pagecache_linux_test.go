package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestEvict writes a file, evicts it and checks with mincore that none of
// its pages stay cached, and that its contents read back the same.
func TestEvict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	data := bytes.Repeat([]byte("medgemma"), 1<<17) // 1 MB
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resident := func() int {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if n := resident(); n == 0 {
		t.Fatal("a file just written has no cached pages; the check below would prove nothing")
	}
	if err := Evict(path); err != nil {
		t.Fatal(err)
	}
	if n := resident(); n != 0 {
		t.Errorf("%d pages still cached after Evict", n)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("contents changed after Evict (err %v)", err)
	}
	if err := Evict(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Evict of a missing file: no error")
	}
}
