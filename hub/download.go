package hub

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medgemma/medgemma/safetensors"
)

// Client downloads from a Hugging Face hub.
type Client struct {
	Endpoint string       // HF_ENDPOINT, default https://huggingface.co
	Token    string       // HF_TOKEN
	Cache    string       // CacheDir()
	Offline  bool         // HF_HUB_OFFLINE
	HTTP     *http.Client // default: a client whose dialer honours Timeouts.Connect
	// Timeouts bound every request; zero fields take the defaults.
	Timeouts Timeouts
	// Progress, when set, is called as bytes arrive: file, done, total.
	Progress func(file string, done, total int64)
}

// Timeouts of a client's requests. A download of gigabytes has no overall
// deadline; what is bounded is each wait: a server that accepts and never
// answers, or stops sending halfway, fails the request instead of hanging
// it (run again to resume).
type Timeouts struct {
	Connect time.Duration // TCP and TLS setup; default 30 s
	Header  time.Duration // from sending the request to the response headers; default 60 s
	Idle    time.Duration // longest wait for more bytes of a body; default 60 s
}

func (t Timeouts) withDefaults() Timeouts {
	t.Connect = cmp.Or(t.Connect, 30*time.Second)
	t.Header = cmp.Or(t.Header, 60*time.Second)
	t.Idle = cmp.Or(t.Idle, 60*time.Second)
	return t
}

// maxUnsizedFile bounds a file whose size the hub does not announce.
const maxUnsizedFile = 256 << 20

// NewClient configures a client from the environment.
func NewClient() *Client {
	c := &Client{Endpoint: os.Getenv("HF_ENDPOINT"), Token: os.Getenv("HF_TOKEN"), Cache: CacheDir()}
	if c.Endpoint == "" {
		c.Endpoint = "https://huggingface.co"
	}
	if c.Token == "" {
		c.Token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	switch strings.ToLower(os.Getenv("HF_HUB_OFFLINE")) {
	case "1", "true", "yes", "on":
		c.Offline = true
	}
	return c
}

// ErrOffline is returned when a download is needed but HF_HUB_OFFLINE is set.
var ErrOffline = errors.New("HF_HUB_OFFLINE is set: not downloading")

// Resolve returns a checkpoint directory for ref: the cached snapshot, or a
// fresh download when allowed.
func (c *Client) Resolve(ctx context.Context, ref Ref) (string, error) {
	if dir, err := Find(c.Cache, ref); err == nil {
		return dir, nil
	}
	if c.Offline {
		return "", fmt.Errorf("%s is not in the cache %s and %w", ref, c.Cache, ErrOffline)
	}
	return c.Pull(ctx, ref)
}

type sibling struct {
	Name   string `json:"rfilename"`
	Size   int64  `json:"size"`
	BlobID string `json:"blobId"`
	LFS    *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

type repoInfo struct {
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

// Pull downloads the files inference needs into the cache and returns the
// snapshot directory.
func (c *Client) Pull(ctx context.Context, ref Ref) (string, error) {
	if c.Offline {
		return "", fmt.Errorf("%s: %w", ref, ErrOffline)
	}
	info, err := c.info(ctx, ref)
	if err != nil {
		return "", err
	}
	if !commitRE.MatchString(info.SHA) {
		return "", fmt.Errorf("%s: the hub answered commit %q", ref, info.SHA)
	}
	dir := repoDir(c.Cache, ref.Repo)
	snap := filepath.Join(dir, "snapshots", info.SHA)
	var files []sibling
	for _, s := range info.Siblings {
		if Needed(s.Name) {
			files = append(files, s)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	if len(files) == 0 {
		return "", fmt.Errorf("%s has no safetensors checkpoint files", ref)
	}
	for _, f := range files {
		if err := c.fetch(ctx, ref, info.SHA, dir, snap, f); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "refs"), 0o755); err != nil {
		return "", err
	}
	if !commitRE.MatchString(ref.Revision) {
		if err := os.WriteFile(filepath.Join(dir, "refs", ref.Revision), []byte(info.SHA), 0o644); err != nil {
			return "", err
		}
	}
	if !complete(snap) {
		return "", fmt.Errorf("%s: downloaded, but there is no config.json and safetensors weights", ref)
	}
	return snap, nil
}

func (c *Client) request(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "medgemma-go")
	return req, nil
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	t := c.Timeouts.withDefaults()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = t.Connect
	return &http.Client{Transport: tr}
}

// errStalled is the cause of a request cancelled by its watchdog.
var errStalled = errors.New("the server stopped answering")

// do sends a request under a watchdog: the response headers must come
// within Timeouts.Header, and each read of the body within Timeouts.Idle of
// the previous one; otherwise the request is cancelled. The returned body
// closes the watchdog with it.
func (c *Client) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	t := c.Timeouts.withDefaults()
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(t.Header, func() {
		cancel(fmt.Errorf("%w: no response within %v", errStalled, t.Header))
	})
	resp, err := c.client().Do(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	timer.Reset(t.Idle)
	resp.Body = &watchedBody{body: resp.Body, ctx: ctx, cancel: cancel, timer: timer, idle: t.Idle}
	return resp, nil
}

// watchedBody pushes the watchdog back on every read.
type watchedBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, errStalled) {
			err = fmt.Errorf("%w: nothing received for %v", errStalled, b.idle)
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// statusError explains a failed response.
func (c *Client) statusError(ref Ref, what string, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint := "set HF_TOKEN to a token of an account that has accepted them"
		if c.Token != "" {
			hint = "the account of HF_TOKEN has no access yet"
		}
		return fmt.Errorf("%s: %s: %s. %s is gated: accept its terms at %s/%s, then %s", ref, what, resp.Status, ref.Repo, c.Endpoint, ref.Repo, hint)
	case http.StatusNotFound:
		return fmt.Errorf("%s: %s: not found (check the repository id and revision)", ref, what)
	}
	return fmt.Errorf("%s: %s: %s", ref, what, resp.Status)
}

func (c *Client) info(ctx context.Context, ref Ref) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.Endpoint, ref.Repo, url.PathEscape(ref.Revision))
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(ref, "repository info", resp)
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: repository info: %w", ref, err)
	}
	return &info, nil
}

// fetch downloads one file into blobs/ (resuming a partial download) and
// links it from the snapshot.
func (c *Client) fetch(ctx context.Context, ref Ref, commit, dir, snap string, f sibling) error {
	size, want := f.Size, ""
	if f.LFS != nil {
		size, want = f.LFS.Size, f.LFS.SHA256
	}
	// Blobs are named by their etag, as huggingface_hub names them: the
	// sha256 for LFS files, the git blob id for small ones.
	blobName := want
	if blobName == "" {
		blobName = f.BlobID
	}
	if blobName == "" || strings.ContainsAny(blobName, `/\.`) {
		return fmt.Errorf("%s: %s: the hub gave no usable blob id", ref, f.Name)
	}
	blobs := filepath.Join(dir, "blobs")
	blob := filepath.Join(blobs, blobName)
	link := filepath.Join(snap, f.Name)
	if st, err := os.Stat(link); err == nil && (size == 0 || st.Size() == size) {
		return nil // already in the snapshot (possibly from transformers)
	}
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(snap, 0o755); err != nil {
		return err
	}
	if st, err := os.Stat(blob); err != nil || (size > 0 && st.Size() != size) {
		if err := c.download(ctx, ref, commit, f.Name, blob, size, want); err != nil {
			return err
		}
	}
	os.Remove(link)
	rel, err := filepath.Rel(snap, blob)
	if err != nil {
		return err
	}
	if err := os.Symlink(rel, link); err != nil {
		// Filesystems without links: copy instead.
		return copyFile(blob, link)
	}
	return nil
}

// download fetches a file to path, resuming from path.incomplete, and checks
// its size and sha256.
func (c *Client) download(ctx context.Context, ref Ref, commit, name, path string, size int64, sha string) error {
	part := path + ".incomplete"
	out, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if size > 0 && have > size {
		if err := out.Truncate(0); err != nil {
			return err
		}
		have, _ = out.Seek(0, io.SeekStart)
	}
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, ref.Repo, commit, url.PathEscape(name))
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("%s: %s: %w (run again to resume)", ref, name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 { // the server ignored the range: start over
			if err := out.Truncate(0); err != nil {
				return err
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return err
			}
			have = 0
		}
	case http.StatusPartialContent:
	case http.StatusRequestedRangeNotSatisfiable:
		// Already complete; verified below.
	default:
		return c.statusError(ref, name, resp)
	}
	total := size
	if total == 0 {
		total, _ = strconv.ParseInt(resp.Header.Get("X-Linked-Size"), 10, 64)
	}
	// Never write past the size the hub announced: a server that sends
	// more (or without end) must not fill the disk.
	limit := int64(maxUnsizedFile)
	if total > 0 {
		limit = total
	}
	w := io.Writer(out)
	if c.Progress != nil {
		w = &progressWriter{w: out, done: have, total: total, name: name, fn: c.Progress}
	}
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		n, err := io.Copy(w, io.LimitReader(resp.Body, limit-have+1))
		if err != nil {
			return fmt.Errorf("%s: %s: download interrupted after %d bytes: %w (run again to resume)", ref, name, statSize(part), err)
		}
		if have+n > limit {
			out.Close()
			os.Remove(part)
			return fmt.Errorf("%s: %s: the server sent more than the %d bytes announced (removed; run again)", ref, name, limit)
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	got := statSize(part)
	if size > 0 && got != size {
		return fmt.Errorf("%s: %s: %d bytes, the hub says %d (run again to resume)", ref, name, got, size)
	}
	if sha != "" {
		sum, err := fileSHA256(part)
		if err != nil {
			return err
		}
		if sum != sha {
			os.Remove(part)
			return fmt.Errorf("%s: %s is corrupt: sha256 %s, the hub says %s (removed; run again)", ref, name, sum, sha)
		}
	}
	if err := os.Rename(part, path); err != nil {
		return err
	}
	if strings.HasSuffix(name, ".safetensors") {
		// Read back by the kernel, the weights map with huge pages.
		return safetensors.Evict(path)
	}
	return nil
}

func statSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var h hash.Hash = sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	name        string
	fn          func(string, int64, int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.name, p.done, p.total)
	return n, err
}
