package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/manifest"
)

var key = []byte("0123456789abcdef")

func freeAddr(t *testing.T) string { return testenv.FreeGossipAddr(t) }

func start(t *testing.T, name string, join []string, mod ...func(*Config)) *Cluster {
	t.Helper()
	cfg := Config{NodeName: name, BindAddr: freeAddr(t), Join: join, SecretKey: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ProbeInterval: 200 * time.Millisecond, SuspicionMult: 2,
		Meta: NodeMeta{Labels: map[string]string{"zone": "a"}, CPUMilli: 2000}}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c
}

func eventually(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	testenv.Until(t, what, d, f)
}

func alive(c *Cluster) int {
	n := 0
	for _, m := range c.Members() {
		if m.Alive {
			n++
		}
	}
	return n
}

func TestConvergeReportsHintsAndDeath(t *testing.T) {
	a := start(t, "node-a", nil)
	b := start(t, "node-b", []string{a.LocalAddr()})
	// node-c's seed list names a seed that comes up only later.
	lateAddr := freeAddr(t)
	c := start(t, "node-c", []string{lateAddr})
	time.Sleep(500 * time.Millisecond)
	late := start(t, "node-d", []string{a.LocalAddr()}, func(cfg *Config) { cfg.BindAddr = lateAddr })
	for _, n := range []*Cluster{a, b, c, late} {
		n := n
		eventually(t, "4 alive members", 10*time.Second, func() bool { return alive(n) == 4 })
	}
	if got := Candidate(c.Members()); got != "node-a" {
		t.Fatalf("candidate %s", got)
	}
	if m := b.Members()[0]; m.Meta.Labels["zone"] != "a" || m.Meta.CPUMilli != 2000 {
		t.Fatalf("meta %+v", m)
	}

	// A large report reaches every node.
	big := map[string]manifest.ReplicaStatus{}
	for i := 0; i < 60; i++ {
		big[fmt.Sprintf("default/Deployment/web/%d", i)] = manifest.ReplicaStatus{Phase: "Running", Ready: true, Message: strings.Repeat("x", 40)}
	}
	b.SetReport(big, "")
	for _, n := range []*Cluster{a, c, late} {
		n := n
		eventually(t, "report", 10*time.Second, func() bool { return len(n.Reports()["node-b"].Replicas) == 60 })
	}

	// A hint reaches every other node exactly once.
	a.Hint(Hint{Kind: "status", Commit: "abc"})
	for _, n := range []*Cluster{b, c, late} {
		select {
		case h := <-n.Hints():
			if h.Commit != "abc" {
				t.Fatalf("hint %+v", h)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("hint not delivered")
		}
	}
	time.Sleep(time.Second)
	for _, n := range []*Cluster{a, b, c, late} {
		select {
		case h := <-n.Hints():
			t.Fatalf("duplicate hint %+v", h)
		default:
		}
	}

	// A node that dies (no leave) is seen dead.
	late.Shutdown()
	eventually(t, "node-d dead", 15*time.Second, func() bool { return alive(a) == 3 })
}

func TestSecurityAndLimits(t *testing.T) {
	if _, err := Start(context.Background(), Config{NodeName: "x", BindAddr: freeAddr(t)}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("no key: %v", err)
	}
	huge := map[string]string{}
	for i := 0; i < 40; i++ {
		huge[fmt.Sprintf("label-%d", i)] = strings.Repeat("v", 20)
	}
	if _, err := Start(context.Background(), Config{NodeName: "x", BindAddr: freeAddr(t), Insecure: true, Meta: NodeMeta{Labels: huge}}); err == nil || !strings.Contains(err.Error(), "512") {
		t.Fatalf("huge meta: %v", err)
	}
	a := start(t, "a", nil)
	wrong := start(t, "w", []string{a.LocalAddr()}, func(c *Config) { c.SecretKey = []byte("fedcba9876543210") })
	time.Sleep(time.Second)
	if alive(a) != 1 || alive(wrong) != 1 {
		t.Fatalf("a node with the wrong key joined: %d %d", alive(a), alive(wrong))
	}
	// The cause is told apart from a seed that is down.
	if _, err := wrong.ml.Join([]string{a.LocalAddr()}); !keyMismatch(err) {
		t.Fatalf("wrong key not recognised: %v", err)
	}
	if _, err := wrong.ml.Join([]string{"127.0.0.1:1"}); err == nil || keyMismatch(err) {
		t.Fatalf("a down seed taken for a key mismatch: %v", err)
	}
}

func TestCandidateAndMajority(t *testing.T) {
	ms := []Member{{Name: "c", Alive: true}, {Name: "a", Alive: false}, {Name: "b", Alive: true}}
	if Candidate(ms) != "b" || Candidate(nil) != "" {
		t.Fatal("candidate")
	}
	for _, tc := range []struct {
		alive, known int
		want         bool
	}{{1, 1, true}, {1, 0, true}, {1, 2, false}, {2, 3, true}, {1, 3, false}, {3, 5, true}, {2, 4, false}} {
		if HasMajority(tc.alive, tc.known) != tc.want {
			t.Fatalf("HasMajority(%d,%d)", tc.alive, tc.known)
		}
	}
}

// A second live agent under a name already in the cluster is refused at
// start; the first keeps its name and membership.
func TestDuplicateNameRefused(t *testing.T) {
	a := start(t, "node-a", nil)
	b := start(t, "node-b", []string{a.LocalAddr()})
	eventually(t, "two members", 5*time.Second, func() bool { return alive(b) == 2 })

	cfg := Config{NodeName: "node-a", BindAddr: freeAddr(t), Join: []string{b.LocalAddr()}, SecretKey: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ProbeInterval: 200 * time.Millisecond, SuspicionMult: 2}
	dup, err := Start(context.Background(), cfg)
	if err == nil {
		dup.Shutdown()
		t.Fatal("a second agent named node-a was accepted")
	}
	if !errors.Is(err, ErrNameInUse) || !strings.Contains(err.Error(), a.LocalAddr()) {
		t.Fatalf("want ErrNameInUse naming %s, got %v", a.LocalAddr(), err)
	}
	// The original stays alive and known to the others, at its address.
	time.Sleep(time.Second)
	for _, m := range b.Members() {
		if m.Name == "node-a" && (!m.Alive || m.Addr != a.LocalAddr()) {
			t.Fatalf("node-a after the refused duplicate: %+v", m)
		}
	}
	if alive(a) != 2 {
		t.Fatalf("node-a lost members: %+v", a.Members())
	}
}

func TestAnnounceHeads(t *testing.T) {
	a := start(t, "node-a", nil)
	b := start(t, "node-b", []string{a.LocalAddr()})
	eventually(t, "joined", 10*time.Second, func() bool { return alive(a) == 2 && alive(b) == 2 })
	heads := func(c *Cluster, name string) (string, string) {
		for _, m := range c.Members() {
			if m.Name == name {
				return m.Meta.StatusHead, m.Meta.DesiredHead
			}
		}
		return "", ""
	}
	s1, d1 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	b.AnnounceStatus(s1)
	b.AnnounceDesired(d1)
	eventually(t, "node-a sees node-b's heads", 10*time.Second, func() bool {
		s, d := heads(a, "node-b")
		return s == s1 && d == d1
	})
	// Other metadata stays as it was.
	for _, m := range a.Members() {
		if m.Name == "node-b" && (m.Meta.Labels["zone"] != "a" || m.Meta.CPUMilli != 2000) {
			t.Fatalf("metadata lost: %+v", m.Meta)
		}
	}
	s2 := strings.Repeat("c", 40)
	b.AnnounceStatus(s2)
	eventually(t, "node-a sees the newer status head", 10*time.Second, func() bool {
		s, d := heads(a, "node-b")
		return s == s2 && d == d1
	})

	// Labels that leave no room for the heads: published without them,
	// the rest of the metadata intact.
	big := map[string]string{}
	for i := 0; i < 9; i++ {
		big[fmt.Sprintf("label-%d", i)] = strings.Repeat("v", 34)
	}
	c := start(t, "node-c", []string{a.LocalAddr()}, func(cfg *Config) { cfg.Meta.Labels = big })
	eventually(t, "node-c joined", 10*time.Second, func() bool { return alive(a) == 3 })
	c.AnnounceStatus(s1)
	c.AnnounceDesired(d1)
	c.AnnounceStatus(s2)
	time.Sleep(time.Second)
	for _, m := range a.Members() {
		if m.Name == "node-c" && (m.Meta.StatusHead != "" || len(m.Meta.Labels) != 9) {
			t.Fatalf("oversized heads published: %+v", m.Meta)
		}
	}
}
