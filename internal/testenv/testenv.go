// Package testenv locates the data that tests share: the repository root and
// the real Gemma 3 tokenizer that scripts/fetch-tokenizer.sh caches.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// TokenizerDir returns the directory holding the real tokenizer.json and
// tokenizer_config.json: $MEDGEMMA_TOKENIZER_DIR, else .cache/tokenizer in the
// repository. A test that needs it fails (it does not skip) when it is absent.
func TokenizerDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MEDGEMMA_TOKENIZER_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), ".cache", "tokenizer")
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatalf("the real Gemma 3 tokenizer is missing (%v): run scripts/fetch-tokenizer.sh, or scripts/test.sh which does", err)
	}
	return dir
}
