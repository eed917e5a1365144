package git

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// SSHNamespace is the namespace git signs commits and tags in.
const SSHNamespace = "git"

// AllowedSigners is an allowed_signers file as `ssh-keygen -Y verify`
// reads it (ssh-keygen(1), "ALLOWED SIGNERS"): one key per line with the
// principals it may sign for and options. Immutable once loaded; safe for
// concurrent use.
type AllowedSigners struct {
	entries []signerEntry
}

type signerEntry struct {
	line        int
	principals  []string // patterns: * and ?, a leading ! negates
	key         ssh.PublicKey
	namespaces  []string // patterns; empty: every namespace
	validAfter  time.Time
	validBefore time.Time
}

// LoadAllowedSigners reads an allowed_signers file.
func LoadAllowedSigners(file string) (*AllowedSigners, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("allowed signers: %w", err)
	}
	return ParseAllowedSigners(file, b)
}

// ParseAllowedSigners parses the content of an allowed_signers file; name
// is used in errors. Every malformed line is reported (name:line: problem);
// options driftless does not implement (cert-authority) are errors, never
// ignored.
func ParseAllowedSigners(name string, b []byte) (*AllowedSigners, error) {
	var out AllowedSigners
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseSignerLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		e.line = n
		out.entries = append(out.entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &out, nil
}

func parseSignerLine(line string) (signerEntry, error) {
	var e signerEntry
	principals, rest := nextField(line)
	principals = strings.Trim(principals, `"`)
	if principals == "" || rest == "" {
		return e, errors.New("want: principals [options] keytype key")
	}
	for _, p := range strings.Split(principals, ",") {
		if p = strings.TrimSpace(p); p != "" {
			e.principals = append(e.principals, p)
		}
	}
	key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return e, fmt.Errorf("key: %w", err)
	}
	e.key = key
	for _, o := range options {
		k, v, hasValue := strings.Cut(o, "=")
		v = strings.Trim(v, `"`)
		switch strings.ToLower(k) {
		case "namespaces":
			for _, ns := range strings.Split(v, ",") {
				if ns = strings.TrimSpace(ns); ns != "" {
					e.namespaces = append(e.namespaces, ns)
				}
			}
		case "valid-after":
			if e.validAfter, err = parseSignerTime(v); err != nil {
				return e, fmt.Errorf("valid-after: %w", err)
			}
		case "valid-before":
			if e.validBefore, err = parseSignerTime(v); err != nil {
				return e, fmt.Errorf("valid-before: %w", err)
			}
		case "cert-authority":
			return e, errors.New("cert-authority: certificate signers are not supported by driftless yet")
		default:
			if !hasValue {
				return e, fmt.Errorf("unknown option %q", o)
			}
			return e, fmt.Errorf("unknown option %q", k)
		}
	}
	return e, nil
}

// nextField splits off the first whitespace-separated field, which may be
// double-quoted.
func nextField(s string) (string, string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		if i := strings.Index(s[1:], `"`); i >= 0 {
			return s[:i+2], strings.TrimSpace(s[i+2:])
		}
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

// parseSignerTime reads YYYYMMDD[HHMM[SS]][Z]; without Z it is local
// time, as ssh-keygen reads it.
func parseSignerTime(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") {
		loc, v = time.UTC, strings.TrimSuffix(v, "Z")
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	return time.ParseInLocation(layout, v, loc)
}

// matchPatterns applies an ssh pattern list: a negated match refuses,
// otherwise any positive match accepts.
func matchPatterns(patterns []string, s string) bool {
	ok := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if m, _ := path.Match(strings.TrimPrefix(p, "!"), s); m {
			if neg {
				return false
			}
			ok = true
		}
	}
	return ok
}

// SSHSigner says who made a verified SSH signature.
type SSHSigner struct {
	// Fingerprint is the key's SHA256 fingerprint, as ssh-keygen -l prints.
	Fingerprint string
	// Principals are the allowed-signers principals of the key's line.
	Principals []string
}

// Verify checks an armored SSH signature ("-----BEGIN SSH SIGNATURE")
// over message in namespace. principal, when not empty, must be one the
// signing key's line allows; at is the time the signature claims (the
// committer time), checked against valid-after/valid-before. The error
// names the key's fingerprint when the key is not trusted.
func (a *AllowedSigners) Verify(message []byte, armored, namespace, principal string, at time.Time) (SSHSigner, error) {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return SSHSigner{}, fmt.Errorf("malformed SSH signature: %w", err)
	}
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	who := SSHSigner{Fingerprint: fp}
	if sig.Namespace != namespace {
		return who, fmt.Errorf("SSH signature by %s is for namespace %q, not %q", fp, sig.Namespace, namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(message), sig, sig.PublicKey, sig.HashAlgorithm, namespace); err != nil {
		return who, fmt.Errorf("bad SSH signature by %s: %w", fp, err)
	}
	// The signature is sound; now: does the file trust this key, here?
	var reasons []string
	if a != nil {
		for _, e := range a.entries {
			if ssh.FingerprintSHA256(e.key) != fp {
				continue
			}
			switch {
			case len(e.namespaces) > 0 && !matchPatterns(e.namespaces, namespace):
				reasons = append(reasons, fmt.Sprintf("line %d: not allowed for namespace %q", e.line, namespace))
			case principal != "" && !matchPatterns(e.principals, principal):
				reasons = append(reasons, fmt.Sprintf("line %d: not allowed to sign as %q", e.line, principal))
			case !e.validAfter.IsZero() && at.Before(e.validAfter):
				reasons = append(reasons, fmt.Sprintf("line %d: not valid before %s", e.line, e.validAfter.UTC().Format(time.RFC3339)))
			case !e.validBefore.IsZero() && !at.Before(e.validBefore):
				reasons = append(reasons, fmt.Sprintf("line %d: expired at %s", e.line, e.validBefore.UTC().Format(time.RFC3339)))
			default:
				who.Principals = e.principals
				return who, nil
			}
		}
	}
	if len(reasons) == 0 {
		return who, fmt.Errorf("signed by unknown key %s", fp)
	}
	return who, fmt.Errorf("signed by %s: %s", fp, strings.Join(reasons, "; "))
}

// Len is the number of keys in the file.
func (a *AllowedSigners) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}
