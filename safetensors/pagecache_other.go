//go:build !linux

package safetensors

// Evict does nothing on this system; see the Linux version for why it exists.
func Evict(path string) error { return nil }
