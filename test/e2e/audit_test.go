package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// An agent with --verify all and an allowed_signers file runs an
// SSH-signed commit and refuses an unsigned one; it signs its status
// commits with the node key it generated and publishes the key in
// nodes/<name>.yaml; `driftless verify` and `git log --show-signature`
// accept the branch, and `driftless history` joins both branches.
func TestSSHSignaturesSignedStatusVerifyHistory(t *testing.T) {
	e := newEnv(t)
	testenv.Require(t, "ssh-keygen")
	keys := t.TempDir()
	alice := filepath.Join(keys, "alice")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", alice).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(alice + ".pub")
	people := filepath.Join(keys, "people")
	os.WriteFile(people, []byte(`alice@example.invalid namespaces="git" `+string(pub)), 0o644)

	commit := func(msg string, signed bool) string {
		args := []string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + alice, "commit", "-q", "-m", msg}
		if signed {
			args = append(args, "-S")
		}
		testenv.Git(t, e.work.Dir, "add", "-A")
		testenv.Git(t, e.work.Dir, args...)
		e.work.Push()
		return testenv.Git(t, e.work.Dir, "rev-parse", "HEAD")
	}
	e.work.WriteFile("a.yaml", deployment("signed", 1, trapSleep))
	c1 := commit("signed web", true)
	o := e.opts(t, "node-1")
	o.extra = []string{"--verify", "all", "--allowed-signers", people}
	ag := startAgent(t, o)
	waitFor(t, "signed commit running", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, e.client, "signed")
		return len(ts) == 1 && ts[0].Status == "running", fmt.Sprintf("%+v", ts)
	})
	e.work.WriteFile("a.yaml", deployment("signed", 2, trapSleep))
	c2 := commit("unsigned scale", false)
	waitFor(t, "unsigned commit refused", 30*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.LastRejection != nil && s.LastRejection.Commit == c2 &&
			strings.Contains(strings.Join(s.LastRejection.Errors, ""), "commit "+c2[:7]+": not signed"), fmt.Sprintf("%+v %v", s, err)
	})

	keyFile := filepath.Join(o.dataDir, "node-key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated node key: %v %v", fi, err)
	}
	nodePub, err := exec.Command("ssh-keygen", "-y", "-f", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	nodePubLine := strings.Join(strings.Fields(string(nodePub))[:2], " ") // without the comment
	// The published key, read from the status branch as anyone would.
	clone := filepath.Join(t.TempDir(), "st")
	testenv.Git(t, filepath.Dir(clone), "clone", "-q", "--bare", e.url, clone)
	waitFor(t, "refusal committed", 30*time.Second, func() (bool, string) {
		testenv.Git(t, clone, "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*")
		y := testenv.Git(t, clone, "show", "driftless/status:cluster.yaml")
		return strings.Contains(y, c2), y
	})
	nodeYAML := testenv.Git(t, clone, "show", "driftless/status:nodes/node-1.yaml")
	if !strings.Contains(nodeYAML, "signingKey: "+nodePubLine) {
		t.Fatalf("nodes/node-1.yaml does not publish %s:\n%s", nodePubLine, nodeYAML)
	}
	nodes := filepath.Join(keys, "nodes")
	os.WriteFile(nodes, []byte("node-1 "+nodePubLine+"\n"), 0o644)
	sigs := testenv.Git(t, clone, "-c", "gpg.ssh.allowedSignersFile="+nodes, "log", "--format=%G? %GS", "driftless/status")
	for _, l := range strings.Split(sigs, "\n") {
		if l != "G node-1" {
			t.Fatalf("git does not verify every status commit:\n%s", sigs)
		}
	}

	out, err := exec.Command(e.bin, "verify", "--repo", e.url, "--allowed-signers", nodes).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "term 1: node-1") {
		t.Fatalf("driftless verify: %v\n%s", err, out)
	}
	out, err = exec.Command(e.bin, "history", "--repo", e.url, "--allowed-signers", people, "signed").CombinedOutput()
	t.Logf("driftless history:\n%s", out)
	for _, want := range []string{
		c1[:7] + " signed web", "(alice@example.invalid), trusted", "accepted by node-1, term 1",
		"node-1 reports default/Deployment/signed[0] Running",
		c2[:7] + " unsigned scale", "signed     no", "not signed",
	} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("history lacks %q (%v)", want, err)
		}
	}
}
