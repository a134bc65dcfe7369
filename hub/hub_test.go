package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// fakeHub serves one repository the way huggingface.co does: revision info,
// /resolve/ redirecting LFS files to a CDN path, ranges, auth.
type fakeHub struct {
	t        *testing.T
	files    map[string][]byte
	lfs      map[string]bool
	token    string // required token, "" for public
	corrupt  string // a file whose bytes differ from its announced sha256
	cutOnce  string // a file whose first download breaks halfway
	overlong string // a file served with 20 MB more than announced
	stall    string // a file whose body stops halfway and hangs
	mu       sync.Mutex
	requests []string
	cutDone  bool
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	h.mu.Unlock()
	if auth := r.Header.Get("Authorization"); h.token != "" && auth != "Bearer "+h.token {
		if auth == "" {
			http.Error(w, "gated", http.StatusUnauthorized)
		} else {
			http.Error(w, "no access", http.StatusForbidden) // a token without the gate accepted
		}
		return
	}
	switch {
	case r.URL.Path == "/api/models/google/medgemma-tiny/revision/main":
		var sib []map[string]any
		for name, data := range h.files {
			sum := sha256.Sum256(data)
			e := map[string]any{"rfilename": name, "size": len(data), "blobId": fmt.Sprintf("%x", sum[:20])}
			if h.lfs[name] {
				e["lfs"] = map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(data)}
			}
			sib = append(sib, e)
		}
		json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": sib})
	case strings.HasPrefix(r.URL.Path, "/google/medgemma-tiny/resolve/"+commit+"/"):
		name := strings.TrimPrefix(r.URL.Path, "/google/medgemma-tiny/resolve/"+commit+"/")
		if h.lfs[name] {
			http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
			return
		}
		h.serve(w, r, name)
	case strings.HasPrefix(r.URL.Path, "/cdn/"):
		h.serve(w, r, strings.TrimPrefix(r.URL.Path, "/cdn/"))
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request, name string) {
	data, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == h.corrupt {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" {
		start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if start >= len(data) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	body := data[start:]
	if name == h.overlong {
		w.Header().Del("Content-Length")
		w.Write(body)
		for range 20 {
			if _, err := w.Write(make([]byte, 1<<20)); err != nil {
				return
			}
		}
		return
	}
	if name == h.stall {
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	h.mu.Lock()
	cut := name == h.cutOnce && !h.cutDone
	if cut {
		h.cutDone = true
	}
	h.mu.Unlock()
	if cut {
		w.Write(body[:len(body)/2])
		// Drop the connection mid-body.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	w.Write(body)
}

func newHub(t *testing.T) (*fakeHub, *Client) {
	weights := make([]byte, 300000)
	for i := range weights {
		weights[i] = byte(i * 7)
	}
	h := &fakeHub{t: t,
		files: map[string][]byte{
			"config.json": []byte(`{"model_type": "gemma3_text"}`), "tokenizer.json": []byte(`{}`),
			"model.safetensors": weights, "README.md": []byte("# x"), "pytorch_model.bin": []byte("no"),
			"onnx/model.onnx": []byte("no"),
		},
		lfs: map[string]bool{"model.safetensors": true, "pytorch_model.bin": true},
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, &Client{Endpoint: srv.URL, Cache: t.TempDir(), HTTP: srv.Client()}
}

func TestPullAndResolve(t *testing.T) {
	h, c := newHub(t)
	ref, _ := ParseRef("google/medgemma-tiny")
	var progress int64
	c.Progress = func(_ string, done, _ int64) { progress = max(progress, done) }
	dir, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(c.Cache, "models--google--medgemma-tiny", "snapshots", commit); dir != want {
		t.Errorf("snapshot %s, want %s", dir, want)
	}
	for name, data := range h.files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if Needed(name) != (err == nil) {
			t.Errorf("%s: needed %v, present %v", name, Needed(name), err == nil)
		}
		if err == nil && string(got) != string(data) {
			t.Errorf("%s: content differs", name)
		}
	}
	if progress != 300000 {
		t.Errorf("progress reached %d bytes", progress)
	}
	if b, _ := os.ReadFile(filepath.Join(c.Cache, "models--google--medgemma-tiny", "refs", "main")); string(b) != commit {
		t.Errorf("refs/main = %q", b)
	}
	// Now cached: found offline, no request.
	n := len(h.requests)
	c.Offline = true
	if dir2, err := c.Resolve(context.Background(), ref); err != nil || dir2 != dir || len(h.requests) != n {
		t.Errorf("offline resolve: %s %v (%d new requests)", dir2, err, len(h.requests)-n)
	}
	if _, err := c.Resolve(context.Background(), Ref{"google/other", "main"}); !errors.Is(err, ErrOffline) {
		t.Errorf("offline miss: %v", err)
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	h, c := newHub(t)
	h.cutOnce = "model.safetensors"
	ref, _ := ParseRef("google/medgemma-tiny")
	if _, err := c.Pull(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("interrupted download: %v", err)
	}
	dir, err := c.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if string(got) != string(h.files["model.safetensors"]) {
		t.Error("resumed file differs")
	}
	resumed := false
	for _, r := range h.requests {
		if strings.HasPrefix(r, "GET /cdn/model.safetensors bytes=") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no ranged request: %v", h.requests)
	}
}

func TestCorruptDownload(t *testing.T) {
	h, c := newHub(t)
	h.corrupt = "model.safetensors"
	ref, _ := ParseRef("google/medgemma-tiny")
	if _, err := c.Pull(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "model.safetensors is corrupt: sha256") {
		t.Fatalf("corrupt file: %v", err)
	}
	if _, err := Find(c.Cache, ref); err == nil {
		t.Error("a corrupt download left a usable snapshot")
	}
}

func TestGatedAndMissing(t *testing.T) {
	h, c := newHub(t)
	h.token = "secret"
	ref, _ := ParseRef("google/medgemma-tiny")
	_, err := c.Pull(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "is gated: accept its terms at") || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Errorf("gated without token: %v", err)
	}
	c.Token = "wrong"
	if _, err := c.Pull(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "the account of HF_TOKEN has no access") {
		t.Errorf("gated, wrong token: %v", err)
	}
	c.Token = "secret"
	if _, err := c.Pull(context.Background(), ref); err != nil {
		t.Errorf("with the token: %v", err)
	}
	if _, err := c.Pull(context.Background(), Ref{"google/nope", "main"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing repo: %v", err)
	}
}

func TestRefsAndCache(t *testing.T) {
	for in, want := range map[string]Ref{"google/medgemma-4b-it": {"google/medgemma-4b-it", "main"}, "google/medgemma-4b-it@v1.0": {"google/medgemma-4b-it", "v1.0"}} {
		if got, err := ParseRef(in); err != nil || got != want {
			t.Errorf("ParseRef(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"medgemma", "a/b/c", "../x", "google/x@a/b", "/x"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q): no error", bad)
		}
	}
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_HOME", "/data/hf")
	if got := CacheDir(); got != "/data/hf/hub" {
		t.Errorf("HF_HOME: %s", got)
	}
	t.Setenv("HF_HUB_CACHE", "/x/cache")
	if got := CacheDir(); got != "/x/cache" {
		t.Errorf("HF_HUB_CACHE: %s", got)
	}
	// A snapshot that transformers downloaded is found without the network.
	cache := t.TempDir()
	snap := filepath.Join(cache, "models--google--m", "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(cache, "models--google--m", "refs"), 0o755)
	os.WriteFile(filepath.Join(cache, "models--google--m", "refs", "main"), []byte(commit+"\n"), 0o644)
	os.WriteFile(filepath.Join(snap, "config.json"), []byte("{}"), 0o644)
	if _, err := Find(cache, Ref{"google/m", "main"}); !errors.Is(err, ErrNotCached) {
		t.Errorf("snapshot without weights: %v", err)
	}
	os.WriteFile(filepath.Join(snap, "model.safetensors.index.json"), []byte("{}"), 0o644)
	if dir, err := Find(cache, Ref{"google/m", "main"}); err != nil || dir != snap {
		t.Errorf("Find = %s, %v", dir, err)
	}
	if dir, err := Find(cache, Ref{"google/m", commit}); err != nil || dir != snap {
		t.Errorf("Find by commit = %s, %v", dir, err)
	}
}

// TestPullStopsAtTheDeclaredSize: a body longer than the size the hub
// announced is not written on (a 1000-byte file took 20 MB; an endless body
// would fill the disk).
func TestPullStopsAtTheDeclaredSize(t *testing.T) {
	for _, name := range []string{"config.json", "model.safetensors"} {
		h, c := newHub(t)
		h.overlong = name
		ref, _ := ParseRef("google/medgemma-tiny")
		_, err := c.Pull(context.Background(), ref)
		if err == nil || !strings.Contains(err.Error(), name+": the server sent more than the") {
			t.Errorf("%s: %v", name, err)
		}
		var written int64
		filepath.Walk(c.Cache, func(_ string, fi os.FileInfo, _ error) error {
			if fi != nil && !fi.IsDir() {
				written += fi.Size()
			}
			return nil
		})
		if written > 1<<20 {
			t.Errorf("%s: %d bytes left in the cache", name, written)
		}
	}
}

// TestPullTimeouts: a server that accepts and never answers, or stops in
// the middle of a body, fails the pull within the timeouts (it hung).
func TestPullTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	ref, _ := ParseRef("google/medgemma-tiny")
	c := &Client{Endpoint: "http://" + ln.Addr().String(), Cache: t.TempDir(), Timeouts: Timeouts{Header: 300 * time.Millisecond}}
	done := make(chan error, 1)
	go func() { _, err := c.Pull(context.Background(), ref); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no response within 300ms") {
			t.Errorf("silent server: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a server that never answers hung the pull")
	}

	h, hc := newHub(t)
	h.stall = "model.safetensors"
	hc.Timeouts = Timeouts{Idle: 300 * time.Millisecond}
	go func() { _, err := hc.Pull(context.Background(), ref); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "nothing received for 300ms") || !strings.Contains(err.Error(), "run again to resume") {
			t.Errorf("stalled body: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a body that stops hung the pull")
	}
}
