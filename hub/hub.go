// Package hub finds and downloads Hugging Face model repositories in the
// standard cache layout that transformers and huggingface_hub use, so that a
// model downloaded by either is found here without a second copy:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//	  models--google--medgemma-4b-it/
//	    refs/main                      the commit a revision points to
//	    blobs/<etag>                   file contents, by hash
//	    snapshots/<commit>/<file>      links to the blobs
//
// Only the files inference needs are downloaded (configs, tokenizer, the
// safetensors weights). Downloads resume, and are checked against the size
// and, for LFS files, the sha256 the hub announces. HF_TOKEN authenticates,
// HF_ENDPOINT changes the server and HF_HUB_OFFLINE=1 forbids the network.
package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Ref is a repository reference: "google/medgemma-4b-it" with an optional
// "@revision" (a branch, tag or commit; "main" by default).
type Ref struct {
	Repo     string
	Revision string
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef reads "org/name[@revision]".
func ParseRef(s string) (Ref, error) {
	repo, rev, _ := strings.Cut(s, "@")
	if rev == "" {
		rev = "main"
	}
	if !repoRE.MatchString(repo) || strings.Contains(repo, "..") {
		return Ref{}, fmt.Errorf("%q is not a Hugging Face repository id (org/name[@revision])", s)
	}
	if strings.ContainsAny(rev, `/\`) || strings.Contains(rev, "..") {
		return Ref{}, fmt.Errorf("revision %q is not supported (no slashes)", rev)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

func (r Ref) String() string { return r.Repo + "@" + r.Revision }

// CacheDir is the hub cache directory from the environment.
func CacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HUGGINGFACE_HUB_CACHE"); d != "" {
		return d
	}
	home := os.Getenv("HF_HOME")
	if home == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				h = "."
			}
			base = filepath.Join(h, ".cache")
		}
		home = filepath.Join(base, "huggingface")
	}
	return filepath.Join(home, "hub")
}

// repoDir is the cache folder of a repository.
func repoDir(cache, repo string) string {
	return filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ErrNotCached is returned by Find when the snapshot is not in the cache.
var ErrNotCached = errors.New("not in the Hugging Face cache")

// Find returns the cached snapshot directory of ref, if it holds a
// checkpoint (config.json and weights).
func Find(cache string, ref Ref) (string, error) {
	dir := repoDir(cache, ref.Repo)
	commit := ref.Revision
	if !commitRE.MatchString(commit) {
		b, err := os.ReadFile(filepath.Join(dir, "refs", ref.Revision))
		if err != nil {
			return "", fmt.Errorf("%s: %w", ref, ErrNotCached)
		}
		commit = strings.TrimSpace(string(b))
	}
	snap := filepath.Join(dir, "snapshots", commit)
	if !complete(snap) {
		return "", fmt.Errorf("%s: %w (snapshot %s is incomplete)", ref, ErrNotCached, commit)
	}
	return snap, nil
}

// complete reports whether a snapshot has a config and weights.
func complete(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return true
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err == nil {
		return true
	}
	return false
}

// Needed reports whether a repository file is needed for inference.
func Needed(name string) bool {
	if strings.Contains(name, "/") {
		return false // sub-folders hold other formats
	}
	switch {
	case strings.HasSuffix(name, ".safetensors"):
		return !strings.HasPrefix(name, "adapter_")
	case strings.HasSuffix(name, ".json"):
		return true
	case name == "tokenizer.model":
		return false // tokenizer.json is what medgemma reads
	}
	return false
}
