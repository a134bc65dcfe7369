//go:build purego

package testenv

// Purego reports whether the assembly kernels are off (-tags purego):
// the model runs several times slower, so tests that run it many times
// for statistics take fewer rounds (scripts/test.sh runs them once more,
// plain, in full).
const Purego = true
