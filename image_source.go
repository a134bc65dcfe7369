package medgemma

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/medgemma/medgemma/internal/errkind"
)

// Defaults of ImageSources.
const (
	DefaultMaxImageBytes      int64 = 64 << 20  // one image
	DefaultMaxTotalImageBytes int64 = 256 << 20 // all the images of one conversation
	DefaultImageTimeout             = 30 * time.Second
)

// ImageSources is the caller's policy for where the image parts of a
// conversation may be read from, and how much. The zero value allows data:
// URIs only, which is what a server open to a network should take; the
// command line allows files and URLs (LocalImageSources).
type ImageSources struct {
	// Files allows local paths and file:// URLs.
	Files bool
	// HTTP allows http(s) URLs on any host; Hosts, when HTTP is false,
	// allows http(s) URLs on these hosts only (names as in the URL, without
	// the port), redirects included.
	HTTP  bool
	Hosts []string
	// MaxBytes bounds one image, MaxTotalBytes all the images of one
	// conversation (0: the defaults above).
	MaxBytes, MaxTotalBytes int64
	// Timeout bounds one http(s) fetch, from connecting to the last byte
	// (0: DefaultImageTimeout).
	Timeout time.Duration
	// Transport, when set, makes the http(s) requests (tests, proxies).
	Transport http.RoundTripper
}

// LocalImageSources is the command line's policy: files, and http(s) URLs on
// any host.
func LocalImageSources() ImageSources { return ImageSources{Files: true, HTTP: true} }

func (p *ImageSources) maxBytes() int64 {
	if p.MaxBytes > 0 {
		return p.MaxBytes
	}
	return DefaultMaxImageBytes
}

func (p *ImageSources) maxTotalBytes() int64 {
	if p.MaxTotalBytes > 0 {
		return p.MaxTotalBytes
	}
	return DefaultMaxTotalImageBytes
}

// check says whether a source may be read under the policy, without reading
// it; its errors are of the kind ErrImageSource.
func (p *ImageSources) check(src string) error {
	switch kind := sourceKind(src); kind {
	case "":
		return errkind.With(ErrImageSource, ErrNoImage)
	case "data":
		return nil
	case "file":
		if !p.Files {
			return errkind.With(ErrImageSource, errors.New("images from files are not allowed here (send the image as a data: URI)"))
		}
		return nil
	default:
		u, err := url.Parse(src)
		if err != nil || u.Host == "" {
			return errkind.With(ErrImageSource, fmt.Errorf("image URL %q is not a valid URL", clip(src)))
		}
		if !p.hostAllowed(u.Hostname()) {
			return errkind.With(ErrImageSource, fmt.Errorf("images from %s are not allowed here (send the image as a data: URI)", u.Hostname()))
		}
		return nil
	}
}

func (p *ImageSources) hostAllowed(host string) bool {
	return p.HTTP || slices.ContainsFunc(p.Hosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// sourceKind is data, file, http or "" (empty).
func sourceKind(src string) string {
	switch {
	case src == "":
		return ""
	case strings.HasPrefix(src, "data:"):
		return "data"
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		return "http"
	}
	return "file" // a path or a file:// URL
}

// read returns a source's bytes, at most MaxBytes of them. Errors are of
// the kinds ErrImageSource (refused, missing, unreachable) or
// ErrImageTooLarge.
func (p *ImageSources) read(ctx context.Context, src string) ([]byte, error) {
	if err := p.check(src); err != nil {
		return nil, err
	}
	var data []byte
	var err error
	switch sourceKind(src) {
	case "data":
		data, err = parseDataURI(src, p.maxBytes())
	case "http":
		data, err = p.fetch(ctx, src)
	default:
		data, err = readFile(src, p.maxBytes())
	}
	if err != nil && !errors.Is(err, ErrImageTooLarge) {
		err = errkind.With(ErrImageSource, err)
	}
	return data, err
}

// describeSource names an image source in errors without dumping a data URI.
func describeSource(src string) string {
	if strings.HasPrefix(src, "data:") {
		return fmt.Sprintf("(data: URI of %d bytes)", len(src))
	}
	return clip(src)
}

// clip shortens a source for a message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func tooLarge(what string, limit int64) error {
	return errkind.With(ErrImageTooLarge, fmt.Errorf("image %s is over the %d-byte limit", what, limit))
}

func readFile(src string, limit int64) ([]byte, error) {
	path := src
	if strings.HasPrefix(src, "file://") {
		u, err := url.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("image URL %q: %w", clip(src), err)
		}
		path = u.Path
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

func parseDataURI(s string, limit int64) ([]byte, error) {
	meta, payload, ok := strings.Cut(strings.TrimPrefix(s, "data:"), ",")
	if !ok {
		return nil, errors.New("data: URI without a comma")
	}
	if strings.HasSuffix(meta, ";base64") {
		if int64(base64.StdEncoding.DecodedLen(len(payload))) > limit+3 {
			return nil, tooLarge("in the data: URI", limit)
		}
		payload = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, payload)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(payload); err == nil {
				if int64(len(b)) > limit {
					return nil, tooLarge("in the data: URI", limit)
				}
				return b, nil
			}
		}
		return nil, errors.New("data: URI: invalid base64")
	}
	if int64(len(payload)) > 3*limit {
		return nil, tooLarge("in the data: URI", limit)
	}
	b, err := url.PathUnescape(payload)
	if err != nil {
		return nil, fmt.Errorf("data: URI: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge("in the data: URI", limit)
	}
	return []byte(b), nil
}

// fetch gets an http(s) image within the timeout and the size limit,
// following redirects only to allowed hosts.
func (p *ImageSources) fetch(ctx context.Context, src string) ([]byte, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultImageTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// failed names the timeout whichever clock ran out first (this one's
	// deadline, or the transport's wait for headers).
	failed := func(err error) error {
		if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("fetching image %s: timeout: no complete answer within %v", clip(src), timeout)
		}
		return fmt.Errorf("fetching image %s: %w", clip(src), err)
	}
	transport := p.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: min(timeout, 10*time.Second)}).DialContext,
			TLSHandshakeTimeout:   min(timeout, 10*time.Second),
			ResponseHeaderTimeout: timeout,
		}
		defer transport.(*http.Transport).CloseIdleConnections()
	}
	client := &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		if !p.hostAllowed(req.URL.Hostname()) {
			return fmt.Errorf("redirected to %s, which is not allowed", req.URL.Hostname())
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("image URL %q: %w", clip(src), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, failed(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching image %s: %s", clip(src), resp.Status)
	}
	limit := p.maxBytes()
	if resp.ContentLength > limit {
		return nil, tooLarge(clip(src), limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, failed(err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(clip(src), limit)
	}
	return data, nil
}
