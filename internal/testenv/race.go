//go:build race

package testenv

// Race reports whether the race detector is on: tests that repeat one
// computation many times for statistics (not for concurrency) run fewer
// rounds under it, since the detector slows plain loops tenfold;
// scripts/test.sh runs those tests once more, plain, in full.
const Race = true
