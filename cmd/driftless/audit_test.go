package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

// auditRepo builds a desired branch (commits by a person, SSH-signed with
// the git CLI or not) and a status branch written by the status package
// with node-a's key: accepted, placed, running, refused, accepted again.
type auditRepo struct {
	url, signers          string
	c1, c2, c3            string
	aliceKey, nodeKeyFile string
	store                 *status.Store
}

func newAuditRepo(t *testing.T) *auditRepo {
	t.Helper()
	testenv.Require(t, "git", "ssh-keygen")
	ctx := context.Background()
	_, url := testenv.NewBareRepo(t)
	keys := t.TempDir()
	r := &auditRepo{url: url, aliceKey: filepath.Join(keys, "alice"), nodeKeyFile: filepath.Join(keys, "node-a")}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", r.aliceKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	alicePub, _ := os.ReadFile(r.aliceKey + ".pub")
	nodeKey, err := status.LoadNodeKey(r.nodeKeyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	r.signers = filepath.Join(keys, "allowed_signers")
	os.WriteFile(r.signers, []byte("alice@example.invalid "+string(alicePub)+
		"node-a "+status.PublicKeyLine(nodeKey.PublicKey())+"\n"), 0o644)

	w := testenv.NewWorkClone(t, url)
	commit := func(msg, content string, signed bool) string {
		w.WriteFile("web.yaml", content)
		testenv.Git(t, w.Dir, "add", "-A")
		args := []string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + r.aliceKey, "commit", "-q", "-m", msg}
		if signed {
			args = append(args, "-S")
		}
		testenv.Git(t, w.Dir, args...)
		w.Push()
		return testenv.Git(t, w.Dir, "rev-parse", "HEAD")
	}
	r.store, err = status.Open(ctx, status.Config{URL: url, Dir: filepath.Join(t.TempDir(), "s"), Signer: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	web := manifest.Ref{Namespace: "default", Kind: "Deployment", Name: "web"}
	write := func(summary string, f func(cur *status.State)) {
		t.Helper()
		_, changed, err := r.store.Update(ctx, func(cur *status.State) (*status.State, *status.Message, error) {
			cur.Cluster.Leader, cur.Cluster.Term = "node-a", 1
			f(cur)
			return cur, &status.Message{Summary: summary, Leader: "node-a", Term: 1, DesiredCommit: cur.Cluster.DesiredCommit}, nil
		})
		if err != nil || !changed {
			t.Fatalf("status write %q: %v %v", summary, changed, err)
		}
		time.Sleep(1100 * time.Millisecond) // distinct commit times, as in a real cluster
	}
	placed := func(commit, hash string, st *manifest.ReplicaStatus) manifest.Placement {
		return manifest.Placement{Workload: web, DesiredCommit: commit, SpecHash: hash, Replicas: []manifest.ReplicaPlacement{
			{Index: 0, Node: "node-a", SpecHash: hash, Status: st},
			{Index: 1, Node: "node-b", SpecHash: hash},
		}}
	}

	r.c1 = commit("add web", dep, true)
	write("schedule default/web", func(cur *status.State) {
		cur.Cluster.DesiredCommit = r.c1
		cur.Nodes["node-a"] = status.NodeStatus{Name: "node-a", State: "alive", SigningKey: status.PublicKeyLine(nodeKey.PublicKey())}
		cur.Placements[web] = placed(r.c1, "h1", nil)
	})
	write("default/web[0] on node-a: Running", func(cur *status.State) {
		cur.Placements[web] = placed(r.c1, "h1", &manifest.ReplicaStatus{Phase: "Running", Ready: true})
	})
	r.c2 = commit("typo", strings.Replace(dep, "image:", "imagee:", 1), false)
	write("refuse "+r.c2[:7], func(cur *status.State) {
		cur.Cluster.LastRejection = &status.Rejection{Commit: r.c2, Time: time.Now().UTC(),
			Errors: []string{"web.yaml:10: spec.template.spec.containers[0].imagee: unknown field"}}
	})
	r.c3 = commit("web: busybox 1.37", strings.Replace(dep, "1.36", "1.37", 1), true)
	write("schedule default/web", func(cur *status.State) {
		cur.Cluster.DesiredCommit = r.c3
		cur.Placements[web] = placed(r.c3, "h2", nil)
	})
	return r
}

func TestHistory(t *testing.T) {
	r := newAuditRepo(t)
	code, out, errs := runCmd("history", "--repo", r.url, "--allowed-signers", r.signers)
	if code != 0 {
		t.Fatalf("history: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	want := []string{
		r.c1[:7] + " add web",
		"author     tester <tester@example.invalid>",
		"signed     ssh SHA256:",
		"(alice@example.invalid), trusted",
		"accepted by node-a, term 1",
		"placed default/Deployment/web: 2 replica(s) on node-a, node-b by node-a, term 1",
		"node-a reports default/Deployment/web[0] Running, ready",
		r.c2[:7] + " typo",
		"signed     no",
		"refused (1 problem(s)), recorded by node-a, term 1",
		"        web.yaml:10: spec.template.spec.containers[0].imagee: unknown field",
		r.c3[:7] + " web: busybox 1.37",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("history lacks %q", w)
		}
	}
	// In order: c1, then c2, then c3; c2's refusal under c2.
	if i1, i2, i3, ir := strings.Index(out, r.c1[:7]+" "), strings.Index(out, r.c2[:7]+" "), strings.Index(out, r.c3[:7]+" "), strings.Index(out, "refused"); !(i1 < i2 && i2 < ir && ir < i3) {
		t.Errorf("order: c1 %d, c2 %d, refusal %d, c3 %d", i1, i2, ir, i3)
	}

	// Without trust given, signers are named but not trusted.
	_, out, _ = runCmd("history", "--repo", r.url)
	if !strings.Contains(out, "not trusted: signed by unknown key SHA256:") {
		t.Errorf("history without allowed signers:\n%s", out)
	}

	code, out, _ = runCmd("history", "--repo", r.url, "-o", "json", "web")
	var rep historyReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("json: %d %s", code, out)
	}
	if len(rep.Commits) != 3 || rep.Commits[0].Hash != r.c1 || rep.Commits[2].Hash != r.c3 {
		t.Fatalf("json commits: %+v", rep.Commits)
	}
	kinds := map[string]int{}
	for _, hc := range rep.Commits {
		for _, ev := range hc.Events {
			kinds[ev.Kind]++
			if ev.Kind == status.EventReplica && (ev.Node != "node-a" || ev.Phase != "Running" || !ev.Ready || *ev.Replica != 0 || ev.DesiredCommit != r.c1) {
				t.Errorf("replica event: %+v", ev)
			}
		}
	}
	if kinds[status.EventAccepted] != 2 || kinds[status.EventRefused] != 1 || kinds[status.EventPlaced] != 2 || kinds[status.EventReplica] != 1 || kinds[status.EventLeader] != 1 {
		t.Errorf("event kinds: %v", kinds)
	}
	if rep.Commits[0].Signer == nil || rep.Commits[0].Signer.Kind != "ssh" || rep.Commits[1].Signer != nil {
		t.Errorf("signers: %+v %+v", rep.Commits[0].Signer, rep.Commits[1].Signer)
	}

	// A workload that never existed: only the refusal is left.
	_, out, _ = runCmd("history", "--repo", r.url, "-o", "json", "default/Deployment/api")
	rep = historyReport{}
	if json.Unmarshal([]byte(out), &rep) != nil || len(rep.Commits) != 1 || rep.Commits[0].Hash != r.c2 {
		t.Errorf("filtered to another workload: %s", out)
	}
	if code, _, _ := runCmd("history"); code != 2 {
		t.Errorf("no --repo: %d", code)
	}
}

func TestVerifyCommand(t *testing.T) {
	r := newAuditRepo(t)
	code, out, errs := runCmd("verify", "--repo", r.url, "--allowed-signers", r.signers)
	if code != 0 || !strings.Contains(out, "4 commit(s) hold") || !strings.Contains(out, "term 1: node-a") {
		t.Fatalf("verify of a branch written by signed status writes: %d %s %s", code, out, errs)
	}
	// The node's key is not trusted for another name.
	other := filepath.Join(t.TempDir(), "allowed_signers")
	k, _ := status.LoadNodeKey(r.nodeKeyFile, false)
	os.WriteFile(other, []byte("node-b "+status.PublicKeyLine(k.PublicKey())+"\n"), 0o644)
	code, _, errs = runCmd("verify", "--repo", r.url, "--allowed-signers", other)
	if code != 1 || !strings.Contains(errs, `not allowed to sign as "node-a"`) {
		t.Fatalf("key trusted for another node: %d %s", code, errs)
	}
	// An unsigned status commit on top.
	s, err := status.Open(context.Background(), status.Config{URL: r.url, Dir: filepath.Join(t.TempDir(), "u")})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := s.Update(context.Background(), func(cur *status.State) (*status.State, *status.Message, error) {
		cur.Nodes["node-x"] = status.NodeStatus{Name: "node-x", State: "alive"}
		return cur, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("verify", "--repo", r.url, "--allowed-signers", r.signers, "-o", "json")
	var res struct {
		OK        bool
		Violation *status.Violation
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.OK || res.Violation == nil ||
		res.Violation.Commit != h.Head || !strings.Contains(errs, "commit "+h.Head[:7]+": leader node-a: not signed") {
		t.Fatalf("unsigned status commit: %d %s %s", code, out, errs)
	}
	if code, _, _ := runCmd("verify", "--repo", r.url); code != 2 {
		t.Fatalf("no --allowed-signers: %d", code)
	}
}
