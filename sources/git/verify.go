package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Verification modes.
const (
	VerifyOff  = "off"
	VerifyHead = "head"
	VerifyAll  = "all"
)

// ErrUnverified marks a commit whose signature policy failed.
var ErrUnverified = errors.New("commit signature not trusted")

// maxVerify bounds the commits checked in one "all" verification.
const maxVerify = 10000

// LoadKeyRing reads armored OpenPGP public keys (one or several blocks).
func LoadKeyRing(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("trusted keys: %w", err)
	}
	if _, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("trusted keys %s: %w", path, err)
	}
	return string(b), nil
}

// Verify checks the signatures the policy asks for between from (the
// commit in force, "" for none) and head: mode "head" checks head only,
// "all" every commit reachable from head and not from from (stopping at
// from). The error names the first commit that fails and why.
func (r *Repo) Verify(from, head, mode, keyRing string) error {
	if mode == "" || mode == VerifyOff {
		return nil
	}
	hc, err := r.repo.CommitObject(plumbing.NewHash(head))
	if err != nil {
		return fmt.Errorf("commit %s: %w", head, err)
	}
	if mode == VerifyHead || from == "" {
		return verifyCommit(hc, keyRing)
	}
	stop := plumbing.NewHash(from)
	seen := map[plumbing.Hash]bool{}
	queue := []*object.Commit{hc}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c.Hash] || c.Hash == stop {
			continue
		}
		seen[c.Hash] = true
		if len(seen) > maxVerify {
			return fmt.Errorf("%w: more than %d commits between %s and %s", ErrUnverified, maxVerify, from[:7], head[:7])
		}
		if err := verifyCommit(c, keyRing); err != nil {
			return err
		}
		err := c.Parents().ForEach(func(p *object.Commit) error {
			queue = append(queue, p)
			return nil
		})
		if err != nil {
			return fmt.Errorf("parents of %s: %w", c.Hash, err)
		}
	}
	return nil
}

func verifyCommit(c *object.Commit, keyRing string) error {
	id := c.Hash.String()[:7]
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return fmt.Errorf("%w: commit %s: not signed", ErrUnverified, id)
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE"):
		return fmt.Errorf("%w: commit %s: signed with an SSH key; only OpenPGP signatures are verified so far", ErrUnverified, id)
	}
	if _, err := c.Verify(keyRing); err != nil {
		if key := issuer(sig); key != "" {
			return fmt.Errorf("%w: commit %s: signed by unknown key %s", ErrUnverified, id, key)
		}
		return fmt.Errorf("%w: commit %s: bad signature: %v", ErrUnverified, id, err)
	}
	return nil
}

// issuer returns the key id that made an armored signature, if it says.
func issuer(armored string) string {
	blk, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return ""
	}
	p, err := packet.Read(blk.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	if s, ok := p.(*packet.Signature); ok {
		if s.IssuerFingerprint != nil {
			return fmt.Sprintf("%X", s.IssuerFingerprint)
		}
		if s.IssuerKeyId != nil {
			return fmt.Sprintf("%016X", *s.IssuerKeyId)
		}
	}
	return ""
}
