package testenv

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// HTTPGet fetches url with a short timeout and returns the body.
func HTTPGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// WaitHTTP polls url until its body is want, failing the test after
// timeout.
func WaitHTTP(t testing.TB, url, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := HTTPGet(url)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got %q, %v; want %q", url, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
