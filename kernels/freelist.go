package kernels

import "sync"

// freeList keeps released objects for the next caller, up to 64 (one per
// concurrent product): a mutex-guarded list rather than a sync.Pool, which
// under the race detector drops a quarter of what it is given (a decode
// step would then allocate).
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

// get takes an object from the list, or makes one with fresh.
func (l *freeList[T]) get(fresh func() *T) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		v := l.free[n-1]
		l.free = l.free[:n-1]
		return v
	}
	return fresh()
}

// put gives v back.
func (l *freeList[T]) put(v *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < 64 {
		l.free = append(l.free, v)
	}
}
