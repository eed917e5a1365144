package git

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseBundleHeader: any bytes either parse into a header whose refs
// and prerequisites are full object ids, or fail with ErrBadBundle. Never
// a panic.
func FuzzParseBundleHeader(f *testing.F) {
	id := strings.Repeat("a", 40)
	f.Add([]byte("# v2 git bundle\n" + id + " refs/heads/main\n\nPACK"))
	f.Add([]byte("# v3 git bundle\n@object-format=sha1\n-" + id + " base\n" + id + " refs/heads/main\n\n"))
	f.Add([]byte("# v2 git bundle\n@filter=blob:none\n\n"))
	f.Add([]byte("# v3 git bundle\n" + id))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseBundleHeader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error not ErrBadBundle: %v", err)
			}
			return
		}
		if h.Version != 2 && h.Version != 3 || len(h.Refs) == 0 {
			t.Fatalf("accepted header %+v", h)
		}
		for name, id := range h.Refs {
			if !fullSHA.MatchString(id) || name == "" {
				t.Fatalf("accepted ref %q -> %q", name, id)
			}
		}
		for _, id := range h.Prerequisites {
			if !fullSHA.MatchString(id) {
				t.Fatalf("accepted prerequisite %q", id)
			}
		}
	})
}

// FuzzParseAllowedSigners: any file content parses or fails with an
// error; never a panic, and what parses can verify (and refuse) a
// signature without panicking either.
func FuzzParseAllowedSigners(f *testing.F) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	f.Add([]byte("alice@example.com " + key + "\n"))
	f.Add([]byte(`*@example.com,!bob@example.com namespaces="git",valid-after="20260101" ` + key + " comment\n# c\n\n"))
	f.Add([]byte(`x cert-authority ` + key))
	f.Add([]byte(`"quoted principal" valid-before="20261231235959Z" ` + key))
	f.Add([]byte(`a namespaces="unterminated ` + key))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseAllowedSigners("fuzz", data)
		if err != nil || s == nil {
			return
		}
		_, _ = s.Verify([]byte("message"), "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", "git", "alice@example.com", t0Fuzz)
	})
}

var t0Fuzz = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
