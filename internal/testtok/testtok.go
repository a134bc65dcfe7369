// Package testtok gives tests outside package tokenizer the real Gemma 3
// tokenizer, loaded once per test binary.
package testtok

import (
	"sync"
	"testing"

	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/tokenizer"
)

var (
	once sync.Once
	tok  *tokenizer.Tokenizer
	err  error
)

// Gemma3 returns the real tokenizer, failing the test when it cannot be loaded.
func Gemma3(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	dir := testenv.TokenizerDir(t)
	once.Do(func() { tok, err = tokenizer.LoadDir(dir) })
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
