package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
)

func member(name, peer string, alive bool, statusHead string) cluster.Member {
	return cluster.Member{Name: name, Alive: alive, Meta: cluster.NodeMeta{Peer: peer, StatusHead: statusHead}}
}

func TestHolders(t *testing.T) {
	ms := []cluster.Member{
		member("node-a", "10.0.0.1:7481", true, "x"), // the leader
		member("node-b", "10.0.0.2:7481", true, "x"), // self
		member("node-c", "10.0.0.3:7481", true, "x"),
		member("node-d", "10.0.0.4:7481", false, "x"), // dead
		member("node-e", "", true, "x"),               // no peer listener
		member("node-f", "10.0.0.6:7481", true, "y"),  // another commit
		member("node-g", "10.0.0.7:7481", true, "x"),
		member("node-h", "10.0.0.8:7481", true, "x"),
		member("node-i", "10.0.0.9:7481", true, "x"), // failed lately
	}
	leader := peerSource{node: "node-a", url: "http://10.0.0.1:7481"}
	hasX := func(m cluster.NodeMeta) bool { return m.StatusHead == "x" }
	failed := func(url string) bool { return url == "http://10.0.0.9:7481" }
	first := map[string]int{}
	for i := 0; i < 200; i++ {
		got := holders(ms, "node-b", hasX, leader, failed)
		if len(got) != maxPeerTries {
			t.Fatalf("%d sources, want %d: %v", len(got), maxPeerTries, got)
		}
		seen := map[string]bool{}
		for _, p := range got {
			if seen[p.node] {
				t.Fatalf("%s twice: %v", p.node, got)
			}
			seen[p.node] = true
			switch p.node {
			case "node-c", "node-g", "node-h":
			default:
				t.Fatalf("%s is not a source of x (the leader goes last, after three others): %v", p.node, got)
			}
		}
		first[got[0].node]++
	}
	for _, n := range []string{"node-c", "node-g", "node-h"} {
		if first[n] < 20 {
			t.Fatalf("peers are not asked at random: first choices %v", first)
		}
	}
	// Few holders: the leader comes after them.
	got := holders(ms[:3], "node-b", hasX, leader, failed)
	if len(got) != 2 || got[0].node != "node-c" || got[1].node != "node-a" {
		t.Fatalf("with one other holder: %v, want node-c then the leader", got)
	}
	// Nobody announces it: the leader, which placed it, is asked.
	got = holders(ms, "node-b", func(cluster.NodeMeta) bool { return false }, leader, failed)
	if len(got) != 1 || got[0] != leader {
		t.Fatalf("no holder: %v, want the leader", got)
	}
	if got := holders(ms, "node-b", func(cluster.NodeMeta) bool { return false }, peerSource{}, failed); len(got) != 0 {
		t.Fatalf("no holder and no leader: %v", got)
	}
}

// A follower reads a newly announced status commit from a peer that
// announces it. A peer that serves a forked history is refused, logged
// with its name and passed over for the next (here the leader); the Git
// host is not asked. While every announced commit is held, nobody is.
func TestFollowerReadsAnnouncedStatus(t *testing.T) {
	testenv.Require(t, "git")
	ctx := context.Background()
	hostDir, url := testenv.NewBareRepo(t)
	leaderDir := filepath.Join(t.TempDir(), "leader")
	leaderStore, err := status.Open(ctx, status.Config{URL: url, Dir: leaderDir, AuthorName: "driftless node-a"})
	if err != nil {
		t.Fatal(err)
	}
	var served [3]atomic.Int32 // leader, liar, idle
	serve := func(i int, dir string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				served[i].Add(1)
			}
			git.ServeUploadPack(w, r, dir, strings.TrimPrefix(r.URL.Path, "/peer/v1/git/status"))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	leaderSrv := serve(0, leaderDir)
	leaderAddr := strings.TrimPrefix(leaderSrv.URL, "http://")
	write := func(term int64) *status.State {
		st, _, err := leaderStore.Update(ctx, func(cur *status.State) (*status.State, *status.Message, error) {
			cur.Cluster.Leader, cur.Cluster.Term = "node-a", term
			cur.Nodes = map[string]status.NodeStatus{"node-a": {Name: "node-a", PeerAddress: leaderAddr}}
			return cur, &status.Message{Summary: fmt.Sprintf("term %d", term), Leader: "node-a", Term: term}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := write(1)

	// A peer whose branch is a fork of the leader's.
	_, otherURL := testenv.NewBareRepo(t)
	forkDir := filepath.Join(t.TempDir(), "fork")
	fork, err := status.Open(ctx, status.Config{URL: otherURL, Dir: forkDir})
	if err != nil {
		t.Fatal(err)
	}
	forked, _, err := fork.Update(ctx, func(cur *status.State) (*status.State, *status.Message, error) {
		cur.Cluster.Leader, cur.Cluster.Term = "node-x", 9
		return cur, &status.Message{Summary: "fork", Leader: "node-x", Term: 9}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	liarSrv := serve(1, forkDir)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewSignerFromKey(priv)
	cfg := DefaultConfig()
	cfg.Node, cfg.DataDir = "node-b", t.TempDir()
	cfg.StatusPoll.Duration = 50 * time.Millisecond
	var logs bytes.Buffer
	gossip := &view{members: []cluster.Member{
		member("node-a", leaderAddr, true, first.Head),
		member("node-b", "127.0.0.1:1", true, ""),
	}}
	a := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), Deps{Source: &fakeSource{}, Status: openStatus(t, url, "node-b"),
		Reconciler: &fakeReconciler{}, Cluster: gossip, NodeKey: key})
	a.readStatus(ctx) // the first read: from the Git host
	if a.committed.Head != first.Head {
		t.Fatalf("first read: %s, want %s", a.committed.Head, first.Head)
	}

	// Nothing new is announced: polls ask nobody.
	for i := 0; i < 5; i++ {
		time.Sleep(60 * time.Millisecond)
		a.followStatus(ctx)
	}
	if n := served[0].Load(); n != 0 {
		t.Fatalf("the leader served %d fetches while nothing new was announced", n)
	}

	// The leader writes; the Git host goes away. The leader and a liar
	// announce the new commit (the liar serves its fork under it).
	next := write(2)
	if err := os.Rename(hostDir, hostDir+".gone"); err != nil {
		t.Fatal(err)
	}
	gossip.members = []cluster.Member{
		member("node-a", leaderAddr, true, next.Head),
		member("node-b", "127.0.0.1:1", true, ""),
		member("node-x", strings.TrimPrefix(liarSrv.URL, "http://"), true, next.Head),
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.committed.Head != next.Head && time.Now().Before(deadline) {
		a.followStatus(ctx)
		time.Sleep(10 * time.Millisecond)
	}
	if a.committed.Head != next.Head {
		t.Fatalf("follower at %s, want the announced %s\n%s", a.committed.Head, next.Head, logs.String())
	}
	if served[1].Load() != 1 || served[0].Load() != 1 {
		t.Fatalf("served: leader %d, liar %d; want one each (the liar first, the leader last)", served[0].Load(), served[1].Load())
	}
	if !strings.Contains(logs.String(), "peer=node-x") || !strings.Contains(logs.String(), "does not contain") {
		t.Fatalf("the refused peer is not logged by name:\n%s", logs.String())
	}
	if forked.Head == a.committed.Head {
		t.Fatal("the fork was taken")
	}
	// Held now: no more fetches, from the liar either (the fork's
	// objects are here, and it failed lately).
	for i := 0; i < 5; i++ {
		time.Sleep(60 * time.Millisecond)
		a.followStatus(ctx)
	}
	if served[0].Load() != 1 || served[1].Load() != 1 {
		t.Fatalf("fetches after the commit was held: leader %d, liar %d", served[0].Load(), served[1].Load())
	}
}
