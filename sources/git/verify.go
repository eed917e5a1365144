package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// DefaultBranch is the desired branch followed unless told otherwise.
const DefaultBranch = "main"

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

// Trust is what a commit signature may be verified against: OpenPGP keys,
// SSH keys, or both. It comes from the agent's own configuration, never
// from the repository it guards.
type Trust struct {
	// KeyRing holds armored OpenPGP public keys ("" for none).
	KeyRing string
	// Signers is an allowed_signers file (nil for none).
	Signers *AllowedSigners
}

// Verify checks the signatures the policy asks for between from (the
// commit in force, "" for none) and head: mode "head" checks head only,
// "all" every commit reachable from head and not from from (stopping at
// from). A commit passes when it is signed by a trusted OpenPGP key or by
// an allowed SSH signer. The error names the first commit that fails and
// why.
func (r *Repo) Verify(from, head, mode string, trust Trust) error {
	if mode == "" || mode == VerifyOff {
		return nil
	}
	hc, err := r.repo.CommitObject(plumbing.NewHash(head))
	if err != nil {
		return fmt.Errorf("commit %s: %w", head, err)
	}
	if mode == VerifyHead || from == "" {
		return verifyCommit(hc, trust)
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
		if err := verifyCommit(c, trust); err != nil {
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

func verifyCommit(c *object.Commit, trust Trust) error {
	if _, err := CommitSigner(c, trust, ""); err != nil {
		return fmt.Errorf("%w: commit %s: %w", ErrUnverified, c.Hash.String()[:7], err)
	}
	return nil
}

// Signature kinds.
const (
	SigNone    = ""
	SigOpenPGP = "openpgp"
	SigSSH     = "ssh"
)

// Signer says who signed a commit.
type Signer struct {
	// Kind is SigNone, SigOpenPGP or SigSSH.
	Kind string `json:"kind,omitempty"`
	// Key is the OpenPGP fingerprint (or key id) or the SSH key's
	// SHA256 fingerprint.
	Key string `json:"key,omitempty"`
	// Principals are the allowed-signers principals of an SSH key, or the
	// OpenPGP identities of the key.
	Principals []string `json:"principals,omitempty"`
	// Trusted is true when the signature verified against the trust given.
	Trusted bool `json:"trusted"`
}

// CommitSigner verifies c's signature against trust. For an SSH signature,
// principal, when not empty, must be one the key may sign for. It returns
// who signed (as far as the signature says, even when the error is not
// nil) and, when the signature is missing, broken or untrusted, an error
// that says why ("not signed", "signed by unknown key SHA256:...").
func CommitSigner(c *object.Commit, trust Trust, principal string) (Signer, error) {
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return Signer{}, errors.New("not signed")
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE"):
		// go-git cannot verify these (Commit.Verify returns a bare EOF):
		// the signed payload is the commit encoded without its signature.
		obj := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(obj); err != nil {
			return Signer{Kind: SigSSH}, fmt.Errorf("encode: %w", err)
		}
		rd, err := obj.Reader()
		if err != nil {
			return Signer{Kind: SigSSH}, err
		}
		payload, err := io.ReadAll(rd)
		if err != nil {
			return Signer{Kind: SigSSH}, err
		}
		who, err := trust.Signers.Verify(payload, sig, SSHNamespace, principal, c.Committer.When)
		s := Signer{Kind: SigSSH, Key: who.Fingerprint, Principals: who.Principals, Trusted: err == nil}
		return s, err
	}
	s := Signer{Kind: SigOpenPGP, Key: issuer(sig)}
	if trust.KeyRing == "" {
		if s.Key == "" {
			return s, errors.New("signed with OpenPGP; no OpenPGP keys are trusted")
		}
		return s, fmt.Errorf("signed by unknown key %s", s.Key)
	}
	e, err := c.Verify(trust.KeyRing)
	if err != nil {
		if s.Key != "" {
			return s, fmt.Errorf("signed by unknown key %s", s.Key)
		}
		return s, fmt.Errorf("bad signature: %v", err)
	}
	s.Trusted = true
	s.Key = fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	for id := range e.Identities {
		s.Principals = append(s.Principals, id)
	}
	sort.Strings(s.Principals)
	return s, nil
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
