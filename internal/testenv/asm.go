//go:build !purego

package testenv

// Purego reports whether the assembly kernels are off (see purego.go).
const Purego = false
