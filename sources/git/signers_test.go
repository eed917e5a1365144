package git

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
)

// sshKey makes an ed25519 key pair with ssh-keygen and returns the private
// key file and the public key line.
func sshKey(t *testing.T, name string) (string, string) {
	t.Helper()
	testenv.Require(t, "ssh-keygen")
	f := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(f + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return f, strings.TrimSpace(string(pub))
}

func fingerprint(t *testing.T, keyFile string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[1]
}

// sshCommit commits with the git CLI, SSH-signed with keyFile ("" for an
// unsigned commit), and pushes.
func sshCommit(t *testing.T, w *testenv.WorkClone, msg, keyFile string) string {
	t.Helper()
	w.WriteFile("a.yaml", "msg: "+msg+"\n")
	testenv.Git(t, w.Dir, "add", "-A")
	args := []string{"-c", "gpg.format=ssh"}
	if keyFile != "" {
		args = append(args, "-c", "user.signingkey="+keyFile, "commit", "-q", "-S", "-m", msg)
	} else {
		args = append(args, "commit", "-q", "-m", msg)
	}
	testenv.Git(t, w.Dir, args...)
	w.Push()
	return testenv.Git(t, w.Dir, "rev-parse", "HEAD")
}

func TestVerifySSHSignatures(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	alice, alicePub := sshKey(t, "alice")
	mallory, _ := sshKey(t, "mallory")
	signersFile := filepath.Join(t.TempDir(), "allowed_signers")
	content := "# people who may push desired state\n" +
		`alice@example.invalid namespaces="git" ` + alicePub + "\n"
	if err := os.WriteFile(signersFile, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	signers, err := LoadAllowedSigners(signersFile)
	if err != nil {
		t.Fatal(err)
	}
	trust := Trust{Signers: signers}

	w := testenv.NewWorkClone(t, url)
	c1 := sshCommit(t, w, "one", alice)
	r, err := Open(ctx, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
	if err != nil {
		t.Fatal(err)
	}
	sync := func(want string) {
		t.Helper()
		rev, err := r.Sync(ctx)
		if err != nil || rev.Commit != want {
			t.Fatalf("sync: %v %v, want %s", rev.Commit, err, want)
		}
	}
	sync(c1)
	if err := r.Verify("", c1, VerifyHead, trust); err != nil {
		t.Fatalf("SSH-signed by a trusted key: %v", err)
	}
	if err := r.Verify("", c1, VerifyAll, trust); err != nil {
		t.Fatalf("all, from nothing: %v", err)
	}

	c2 := sshCommit(t, w, "two, unsigned", "")
	sync(c2)
	err = r.Verify(c1, c2, VerifyHead, trust)
	if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "commit "+c2[:7]+": not signed") {
		t.Fatalf("unsigned head: %v", err)
	}

	c3 := sshCommit(t, w, "three", alice)
	sync(c3)
	if err := r.Verify(c1, c3, VerifyHead, trust); err != nil {
		t.Fatalf("head mode checks the head only: %v", err)
	}
	err = r.Verify(c1, c3, VerifyAll, trust)
	if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "commit "+c2[:7]+": not signed") {
		t.Fatalf("all mode must find the unsigned commit in the middle: %v", err)
	}

	c4 := sshCommit(t, w, "four", mallory)
	sync(c4)
	err = r.Verify(c3, c4, VerifyHead, trust)
	want := "commit " + c4[:7] + ": signed by unknown key " + fingerprint(t, mallory)
	if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), want) {
		t.Fatalf("unknown key: got %v, want %q", err, want)
	}

	// Either kind of trusted key passes: an OpenPGP ring alone does not
	// trust alice's SSH key, the ring with the allowed signers does.
	_, ring := newKey(t, "trusted")
	if err := r.Verify("", c3, VerifyHead, Trust{KeyRing: ring}); err == nil {
		t.Fatal("an SSH signature passed with OpenPGP keys only")
	}
	if err := r.Verify("", c3, VerifyHead, Trust{KeyRing: ring, Signers: signers}); err != nil {
		t.Fatalf("SSH signer with both kinds of trust: %v", err)
	}
}

func TestAllowedSignersOptions(t *testing.T) {
	_, alicePub := sshKey(t, "alice")
	for _, tc := range []struct {
		name, file, wantErr string
	}{
		{"plain", "alice " + alicePub, ""},
		{"quoted principals", `"alice,bob" ` + alicePub, ""},
		{"validity", `alice valid-after="20200101",valid-before="21000101Z" ` + alicePub, ""},
		{"cert authority", "*@example.invalid cert-authority " + alicePub, "t:2: cert-authority"},
		{"unknown option", "alice no-touch-required " + alicePub, `t:2: unknown option "no-touch-required"`},
		{"bad key", "alice ssh-ed25519 AAAAnotakey", "t:2: key:"},
		{"no key", "alice", "t:2: want: principals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowedSigners("t", []byte("# comment\n"+tc.file+"\n"))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}
