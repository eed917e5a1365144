package status

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/sources/git"
	"golang.org/x/crypto/ssh"
)

// signedStore opens a store on branch that signs with signer (nil: unsigned).
func signedStore(t *testing.T, url, branch, node string, signer ssh.Signer) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: url, Branch: branch, Dir: filepath.Join(t.TempDir(), "status"),
		AuthorName: "driftless " + node, AuthorEmail: node + "@driftless.invalid", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func nodeKey(t *testing.T, dir, node string) ssh.Signer {
	t.Helper()
	p := filepath.Join(dir, node, "node-key")
	k, err := LoadNodeKey(p, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode: %v %v", fi.Mode(), err)
	}
	again, err := LoadNodeKey(p, true)
	if err != nil || string(again.PublicKey().Marshal()) != string(k.PublicKey().Marshal()) {
		t.Fatalf("a second start must load the same key: %v", err)
	}
	return k
}

func mustUpdate(t *testing.T, s *Store, m Mutate) {
	t.Helper()
	if _, changed, err := s.Update(context.Background(), m); err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
}

func place(node string, term int64, desired, phase string) Mutate {
	return func(cur *State) (*State, *Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term, cur.Cluster.DesiredCommit = node, term, desired
		ref := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
		cur.Placements[ref] = manifest.Placement{Workload: ref, DesiredCommit: desired, SpecHash: "h1",
			Replicas: []manifest.ReplicaPlacement{{Index: 0, Node: node, SpecHash: "h1", Status: &manifest.ReplicaStatus{Phase: phase, Ready: phase == "Running"}}}}
		return cur, &Message{Summary: "schedule web: " + phase, Leader: node, Term: term, DesiredCommit: desired}, nil
	}
}

func TestSignedStatusCommitsAndAudit(t *testing.T) {
	ctx := context.Background()
	testenv.Require(t, "git", "ssh-keygen")
	dir, url := testenv.NewBareRepo(t)
	keys := t.TempDir()
	ka, kb, kc := nodeKey(t, keys, "node-a"), nodeKey(t, keys, "node-b"), nodeKey(t, keys, "node-c")
	signersFile := filepath.Join(keys, "allowed_signers")
	os.WriteFile(signersFile, []byte(
		`node-a namespaces="git" `+PublicKeyLine(ka.PublicKey())+"\n"+
			`node-b namespaces="git" `+PublicKeyLine(kb.PublicKey())+"\n"), 0o644)
	signers, err := git.LoadAllowedSigners(signersFile)
	if err != nil {
		t.Fatal(err)
	}

	const branch = "driftless/status"
	a := signedStore(t, url, branch, "node-a", ka)
	b := signedStore(t, url, branch, "node-b", kb)
	mustUpdate(t, a, setLeader("node-a", 1, strings.Repeat("1", 40)))
	mustUpdate(t, a, place("node-a", 1, strings.Repeat("1", 40), "Pending"))
	mustUpdate(t, a, place("node-a", 1, strings.Repeat("1", 40), "Running"))
	mustUpdate(t, b, place("node-b", 2, strings.Repeat("2", 40), "Running"))

	// git itself verifies them with an allowed signers file.
	out := testenv.Git(t, dir, "-c", "gpg.ssh.allowedSignersFile="+signersFile, "log", "--format=%H %G? %GS", branch)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 status commits:\n%s", out)
	}
	for i, l := range lines {
		want := "G node-a"
		if i == 0 {
			want = "G node-b"
		}
		if !strings.HasSuffix(l, want) {
			t.Fatalf("git does not verify the status commit as %q: %s", want, l)
		}
	}

	log, err := Log(ctx, url, branch, git.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	rep, v := Audit(log, signers)
	if v != nil {
		t.Fatalf("a branch written by real status writes must pass: %v", v)
	}
	if rep.Commits != 4 || rep.Terms[1] != "node-a" || rep.Terms[2] != "node-b" || len(rep.Keys) != 2 {
		t.Fatalf("report: %+v", rep)
	}

	// Tampered copies of the branch, each on a branch of its own.
	fork := func(name string) string {
		testenv.Git(t, dir, "branch", "-f", name, branch)
		return name
	}
	audit := func(name string) *Violation {
		t.Helper()
		log, err := Log(ctx, url, name, git.Auth{})
		if err != nil {
			t.Fatal(err)
		}
		_, v := Audit(log, signers)
		return v
	}
	head := lines[0][:40]
	cases := []struct {
		name, want string
		tamper     func(branch string) string // returns the commit the violation names
	}{
		{"rewritten", "bad SSH signature", func(br string) string {
			raw := testenv.Git(t, dir, "cat-file", "commit", head)
			raw = strings.Replace(raw, "schedule web: Running", "schedule web: Running, nothing to see", 1)
			cmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
			cmd.Dir, cmd.Stdin = dir, strings.NewReader(raw+"\n")
			h, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			c := strings.TrimSpace(string(h))
			testenv.Git(t, dir, "update-ref", "refs/heads/"+br, c)
			return c
		}},
		{"unsigned", "not signed", func(br string) string {
			s := signedStore(t, url, br, "node-b", nil)
			mustUpdate(t, s, place("node-b", 2, strings.Repeat("3", 40), "Running"))
			return testenv.Git(t, dir, "rev-parse", br)
		}},
		{"two leaders in one term", "second leader in term 2: node-a after node-b", func(br string) string {
			s := signedStore(t, url, br, "node-a", ka)
			mustUpdate(t, s, place("node-a", 2, strings.Repeat("3", 40), "Running"))
			return testenv.Git(t, dir, "rev-parse", br)
		}},
		{"term decreases", "term decreases from 2 to 1", func(br string) string {
			s := signedStore(t, url, br, "node-a", ka)
			mustUpdate(t, s, place("node-a", 1, strings.Repeat("3", 40), "Running"))
			return testenv.Git(t, dir, "rev-parse", br)
		}},
		{"signed by another node's key", "not allowed to sign as \"node-a\"", func(br string) string {
			s := signedStore(t, url, br, "node-b", kb)
			mustUpdate(t, s, place("node-a", 3, strings.Repeat("3", 40), "Running"))
			return testenv.Git(t, dir, "rev-parse", br)
		}},
		{"unknown key", "signed by unknown key " + ssh.FingerprintSHA256(kc.PublicKey()), func(br string) string {
			s := signedStore(t, url, br, "node-c", kc)
			mustUpdate(t, s, place("node-c", 3, strings.Repeat("3", 40), "Running"))
			return testenv.Git(t, dir, "rev-parse", br)
		}},
		{"merge", "merge commit", func(br string) string {
			tree := testenv.Git(t, dir, "rev-parse", head+"^{tree}")
			c := testenv.Git(t, dir, "commit-tree", tree, "-p", head, "-p", lines[2][:40], "-m", "merge\n\nLeader: node-b\nTerm: 2")
			testenv.Git(t, dir, "update-ref", "refs/heads/"+br, c)
			return c
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			br := fork("tampered-" + string(rune('a'+i)))
			bad := tc.tamper(br)
			v := audit(br)
			t.Logf("%v", v)
			if v == nil || v.Commit != bad || !strings.Contains(v.Reason, tc.want) {
				t.Fatalf("want a violation at %s containing %q, got %v", bad[:7], tc.want, v)
			}
		})
	}
}

// BenchmarkLogAndAudit reads and audits a signed status branch of 100
// commits (one placement changing per commit): the cost of `driftless
// verify` per status commit.
func BenchmarkLogAndAudit(b *testing.B) {
	ctx := context.Background()
	_, url := testenv.NewBareRepo(b)
	k, err := LoadNodeKey(filepath.Join(b.TempDir(), "k"), true)
	if err != nil {
		b.Fatal(err)
	}
	signers, err := git.ParseAllowedSigners("s", []byte("node-a "+PublicKeyLine(k.PublicKey())+"\n"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, Config{URL: url, Dir: filepath.Join(b.TempDir(), "s"), Signer: k})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	for i := 0; i < n; i++ {
		phase := []string{"Pending", "Running"}[i%2]
		if _, _, err := s.Update(ctx, place("node-a", 1, strings.Repeat("1", 40), phase)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		log, err := Log(ctx, url, "driftless/status", git.Auth{})
		if err != nil {
			b.Fatal(err)
		}
		if _, v := Audit(log, signers); v != nil || len(log) != n {
			b.Fatalf("%v %d", v, len(log))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/commit")
}
