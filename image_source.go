package medgemma

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Limits on images fetched over HTTP.
var (
	MaxImageBytes int64 = 64 << 20
	ImageTimeout        = 30 * time.Second
)

// readImageSource reads an image part's bytes: a file path, a file:// URL, a
// data: URI, or an http(s) URL (with a size limit and a timeout).
func readImageSource(ctx context.Context, src string) ([]byte, error) {
	switch {
	case src == "":
		return nil, ErrNoImage
	case strings.HasPrefix(src, "data:"):
		return parseDataURI(src)
	case strings.HasPrefix(src, "file://"):
		u, err := url.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("image URL %q: %w", src, err)
		}
		return os.ReadFile(u.Path)
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		return fetchImage(ctx, src)
	}
	return os.ReadFile(src)
}

// describeSource names an image source in errors without dumping a data URI.
func describeSource(src string) string {
	if strings.HasPrefix(src, "data:") {
		return fmt.Sprintf("(data: URI of %d bytes)", len(src))
	}
	return src
}

func parseDataURI(s string) ([]byte, error) {
	meta, payload, ok := strings.Cut(strings.TrimPrefix(s, "data:"), ",")
	if !ok {
		return nil, fmt.Errorf("data: URI without a comma")
	}
	if strings.HasSuffix(meta, ";base64") {
		payload = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, payload)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(payload); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("data: URI: invalid base64")
	}
	b, err := url.PathUnescape(payload)
	if err != nil {
		return nil, fmt.Errorf("data: URI: %w", err)
	}
	return []byte(b), nil
}

func fetchImage(ctx context.Context, src string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ImageTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("image URL %q: %w", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching image %s: %w", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching image %s: %s", src, resp.Status)
	}
	if resp.ContentLength > MaxImageBytes {
		return nil, fmt.Errorf("image %s is %d bytes, over the %d-byte limit", src, resp.ContentLength, MaxImageBytes)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching image %s: %w", src, err)
	}
	if int64(len(data)) > MaxImageBytes {
		return nil, fmt.Errorf("image %s is over the %d-byte limit", src, MaxImageBytes)
	}
	return data, nil
}
