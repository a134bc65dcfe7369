//go:build !linux

package mapped

func adviseHugePages(b []byte) {}
