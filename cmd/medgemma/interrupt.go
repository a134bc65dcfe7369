package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errInterrupted ends a command stopped by Ctrl-C (SIGINT) or SIGTERM: it
// exits with exitInterrupted, as shells report a command killed by SIGINT.
var errInterrupted = errors.New("interrupted")

const exitInterrupted = 130

// exit is os.Exit; tests replace it.
var exit = os.Exit

// interrupts delivers SIGINT and SIGTERM to onSignal(n), n counting from 1,
// until stop is called.
func interrupts(onSignal func(n int)) (stop func()) {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for n := 1; ; n++ {
			select {
			case <-sig:
				onSignal(n)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		<-finished
	}
}

// interruptible returns a context that the first SIGINT or SIGTERM cancels
// (cause errInterrupted), so that loading, image encoding, prefill and
// generation stop within a layer or a token; a second signal exits at once.
func interruptible(parent context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := interrupts(func(n int) {
		if n == 1 {
			cancel(errInterrupted)
			return
		}
		fmt.Fprintln(stderr, "\nmedgemma: interrupted again, exiting")
		exit(exitInterrupted)
	})
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// interruptedErr turns an error caused by the interrupt into errInterrupted.
func interruptedErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errInterrupted) && (errors.Is(err, context.Canceled) || errors.Is(err, errInterrupted)) {
		return errInterrupted
	}
	return err
}

// prefillHook, when set (by tests), follows every prefill chunk with the
// context the command runs under.
var prefillHook func(ctx context.Context, done, total int)

// withPrefillHook adds prefillHook to a prefill progress function.
func withPrefillHook(ctx context.Context, f func(done, total int)) func(done, total int) {
	if prefillHook == nil {
		return f
	}
	return func(done, total int) {
		if f != nil {
			f(done, total)
		}
		prefillHook(ctx, done, total)
	}
}
