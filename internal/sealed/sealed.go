// Package sealed encrypts the values of Secret manifests to a cluster's age
// recipients and decrypts them with a node's age identities.
//
// A sealed Secret is a v1 Secret annotated driftless.dev/sealed: "age"
// whose data values are age ciphertexts (binary age format, base64 in the
// manifest as every data value is), one ciphertext per key so that a diff
// shows which key changed. Everything else about it stays a Kubernetes
// Secret.
//
// This package must never log, and never return an error that holds a
// plaintext value or private key material.
package sealed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

// Annotation marks a sealed Secret; its value names the scheme.
const Annotation = "driftless.dev/sealed"

// Scheme is the only value Annotation may have.
const Scheme = "age"

// ErrNoIdentity: the node has no identity at all to decrypt with.
var ErrNoIdentity = errors.New("no age identity on this node (--age-identity)")

// ErrNoMatch: none of the node's identities is a recipient of a value.
var ErrNoMatch = errors.New("no identity matches")

// ageMagic opens every binary age file.
const ageMagic = "age-encryption.org/v1\n"

// Recipients checks that ct is the start of a well-formed age file and
// returns how many recipients it is sealed to. It needs no key: it is the
// structure check `validate` can do anywhere.
func Recipients(ct []byte) (int, error) {
	if !bytes.HasPrefix(ct, []byte(ageMagic)) {
		return 0, errors.New("not an age ciphertext (want the binary age format, base64 in data)")
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(ct))
	if err != nil {
		return 0, fmt.Errorf("malformed age ciphertext: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(hdr), "\n") {
		if strings.HasPrefix(line, "-> ") {
			n++
		}
	}
	// After the header: a 16-byte nonce and at least one chunk with its
	// 16-byte tag.
	if len(ct)-len(hdr) < 32 {
		return n, errors.New("malformed age ciphertext: truncated payload")
	}
	return n, nil
}

// ParseRecipients reads a recipients file: one public key a line, blank
// lines and #-comments ignored. Accepted: age X25519 (age1...), age
// post-quantum hybrid (age1pq1...), and ssh-ed25519 / ssh-rsa public keys
// (as in authorized_keys or a node's published signingKey).
func ParseRecipients(r io.Reader) ([]age.Recipient, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	var out []age.Recipient
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var rc age.Recipient
		switch {
		case strings.HasPrefix(line, "ssh-"):
			rc, err = agessh.ParseRecipient(line)
		case strings.HasPrefix(line, "age1"):
			var rs []age.Recipient
			rs, err = age.ParseRecipients(strings.NewReader(line))
			if len(rs) == 1 {
				rc = rs[0]
			}
		case strings.HasPrefix(line, "AGE-SECRET-KEY-"):
			// Never echo the line: it is a private key.
			err = errors.New("a private key, not a recipient (use the public key: age-keygen -y)")
		default:
			err = errors.New("unknown recipient type (want age1..., ssh-ed25519 or ssh-rsa)")
		}
		if err != nil {
			return nil, fmt.Errorf("recipients line %d: %w", i+1, err)
		}
		out = append(out, rc)
	}
	if len(out) == 0 {
		return nil, errors.New("no recipients found")
	}
	return out, nil
}

// ParseIdentities reads an age identity file (AGE-SECRET-KEY-... lines,
// #-comments) or an unencrypted SSH private key in PEM form (ed25519 or
// RSA, such as a node key).
func ParseIdentities(b []byte) ([]age.Identity, error) {
	if bytes.Contains(b, []byte("-----BEGIN ")) {
		id, err := agessh.ParseIdentity(b)
		if err != nil {
			return nil, fmt.Errorf("SSH identity: %w", err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("age identities: %w", err)
	}
	return ids, nil
}

// Keyring decrypts sealed Secret values with a node's identities. The zero
// Keyring has none: every Open fails with ErrNoIdentity. Safe for
// concurrent use; not mutated after creation.
type Keyring struct {
	ids []age.Identity
}

// NewKeyring returns a Keyring holding ids.
func NewKeyring(ids []age.Identity) *Keyring { return &Keyring{ids: ids} }

// Len is the number of identities.
func (k *Keyring) Len() int { return len(k.ids) }

// LoadKeyring reads an identity file (see ParseIdentities). An empty path
// gives a Keyring with no identity.
func LoadKeyring(path string) (*Keyring, error) {
	if path == "" {
		return &Keyring{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read age identity: %w", err)
	}
	ids, err := ParseIdentities(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Keyring{ids: ids}, nil
}

// Open decrypts every value of a sealed Secret's data. secret names the
// Secret ("namespace/name") in errors, which say why (ErrNoIdentity,
// ErrNoMatch with the number of recipients, or a damaged ciphertext) and
// never hold a value. The returned map is new; callers keep it in memory
// only.
func (k *Keyring) Open(secret string, data map[string][]byte) (map[string][]byte, error) {
	keys := make([]string, 0, len(data))
	for key := range data {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	out := make(map[string][]byte, len(data))
	for _, key := range keys {
		pt, err := k.decrypt(data[key])
		if err != nil {
			return nil, fmt.Errorf("secret %s: key %s: %w", secret, key, err)
		}
		out[key] = pt
	}
	return out, nil
}

func (k *Keyring) decrypt(ct []byte) ([]byte, error) {
	n, err := Recipients(ct)
	if err != nil {
		return nil, err
	}
	if k == nil || len(k.ids) == 0 {
		return nil, fmt.Errorf("%w (sealed to %d recipients)", ErrNoIdentity, n)
	}
	r, err := age.Decrypt(bytes.NewReader(ct), k.ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w (sealed to %d recipients)", ErrNoMatch, n)
		}
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	pt, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return pt, nil
}

// Encrypt seals one value to recipients.
func Encrypt(value []byte, recipients []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(value); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return buf.Bytes(), nil
}
