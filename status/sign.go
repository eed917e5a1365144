package status

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/sources/git"
)

// LoadNodeKey reads the SSH private key at path (OpenSSH or PEM format,
// unencrypted). When the file does not exist and create is true, it
// generates an ed25519 key there (mode 0600) first.
func LoadNodeKey(path string, create bool) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := generateNodeKey(path); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	return s, nil
}

func generateNodeKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate node key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "driftless node key")
	if err != nil {
		return fmt.Errorf("encode node key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("node key dir: %w", err)
	}
	// O_EXCL: two starts racing must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write node key: %w", err)
	}
	if err := pem.Encode(f, blk); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write node key: %w", err)
	}
	return f.Close()
}

// PublicKeyLine renders a public key as an authorized_keys line without
// a comment ("ssh-ed25519 AAAA...").
func PublicKeyLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// signCommit sets c's signature: an SSH signature (namespace "git", as
// `git commit -S` with gpg.format=ssh makes) over the commit encoded
// without it, so that `git log --show-signature` verifies it.
func signCommit(c *object.Commit, signer ssh.Signer) error {
	obj := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(obj); err != nil {
		return fmt.Errorf("encode status commit: %w", err)
	}
	r, err := obj.Reader()
	if err != nil {
		return err
	}
	payload, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sig, err := sshsig.Sign(bytes.NewReader(payload), signer, sshsig.HashSHA512, git.SSHNamespace)
	if err != nil {
		return fmt.Errorf("sign status commit: %w", err)
	}
	c.PGPSignature = string(sshsig.Armor(sig))
	return nil
}
