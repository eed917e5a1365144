package git

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"

	"driftless.dev/driftless/internal/testenv"
)

func newKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, buf.String()
}

// signer commits with go-git, signed (or not), and pushes.
type signer struct {
	t    *testing.T
	repo *gogit.Repository
	dir  string
}

func newSigner(t *testing.T, url string) *signer {
	dir := t.TempDir()
	r, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		t.Fatal(err)
	}
	return &signer{t: t, repo: r, dir: dir}
}

func (s *signer) commit(msg string, key *openpgp.Entity) string {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "a.yaml"), []byte("msg: "+msg+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	wt, _ := s.repo.Worktree()
	if _, err := wt.Add("a.yaml"); err != nil {
		s.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &gogit.CommitOptions{SignKey: key,
		Author: &object.Signature{Name: "p", Email: "p@example.invalid", When: time.Now()}})
	if err != nil {
		s.t.Fatal(err)
	}
	head, _ := s.repo.Head()
	spec := config.RefSpec("+" + head.Name().String() + ":refs/heads/main")
	if err := s.repo.Push(&gogit.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}}); err != nil {
		s.t.Fatal(err)
	}
	return h.String()
}

func TestVerifySignatures(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	trusted, ring := newKey(t, "trusted")
	stranger, _ := newKey(t, "stranger")
	keyFile := filepath.Join(t.TempDir(), "keys.asc")
	os.WriteFile(keyFile, []byte(ring), 0o644)
	ring, err := LoadKeyRing(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner(t, url)
	c1 := s.commit("one", trusted)
	r, err := Open(ctx, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	sync := func() string {
		rev, err := r.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rev.Commit
	}
	if err := r.Verify("", sync(), VerifyHead, Trust{KeyRing: ring}); err != nil {
		t.Fatalf("trusted head: %v", err)
	}
	c2 := s.commit("two, unsigned", nil)
	c3 := s.commit("three", trusted)
	if sync() != c3 {
		t.Fatal("head")
	}
	if err := r.Verify(c1, c3, VerifyHead, Trust{KeyRing: ring}); err != nil {
		t.Fatalf("head mode only checks the head: %v", err)
	}
	err = r.Verify(c1, c3, VerifyAll, Trust{KeyRing: ring})
	if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "commit "+c2[:7]+": not signed") {
		t.Fatalf("all mode must find the unsigned commit: %v", err)
	}
	if err := r.Verify(c2, c3, VerifyAll, Trust{KeyRing: ring}); err != nil {
		t.Fatalf("commits before the one in force are not checked again: %v", err)
	}
	c4 := s.commit("four", stranger)
	sync()
	err = r.Verify(c3, c4, VerifyHead, Trust{KeyRing: ring})
	if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "signed by unknown key") {
		t.Fatalf("stranger's key: %v", err)
	}
	if err := r.Verify(c3, c4, VerifyOff, Trust{KeyRing: ring}); err != nil {
		t.Fatal(err)
	}
}
