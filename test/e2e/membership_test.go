package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeKey(t testing.TB, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString([]byte(key))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Gossip faults a person makes: a second agent started under a name that
// is in use is refused and exits without touching the first one's
// containers; a node restarted with the wrong gossip key says so, cannot
// join, and keeps running the containers committed to it.
func TestDuplicateNameAndWrongKey(t *testing.T) {
	e := newEnv(t)
	key := writeKey(t, "0123456789abcdef0123456789abcdef")
	wrongKey := writeKey(t, "fedcba9876543210fedcba9876543210")

	e.work.WriteFile("web.yaml", deployment("web", 2, trapSleep))
	e.work.Commit("web x2")
	e.work.Push()

	g1, g2 := freeGossipAddr(t), freeGossipAddr(t)
	o1, o2 := e.opts(t, "node-1"), e.opts(t, "node-2")
	o1.namespace, o2.namespace = ns+"-node-1", ns+"-node-2"
	common := []string{"--bootstrap-expect", "2", "--node-grace", "120s", "--status-poll", "1s"}
	o1.extra = append([]string{"--gossip", g1, "--join", g2, "--gossip-key-file", key}, common...)
	o2.extra = append([]string{"--gossip", g2, "--join", g1, "--gossip-key-file", key}, common...)
	startAgent(t, o1)
	a2 := startAgent(t, o2)
	waitFor(t, "web one replica per node", 90*time.Second, func() (bool, string) {
		n1, n2 := running(listTasksIn(t, e.client, o1.namespace, "web")), running(listTasksIn(t, e.client, o2.namespace, "web"))
		return n1 == 1 && n2 == 1, fmt.Sprintf("node-1: %d node-2: %d", n1, n2)
	})

	// Another process says it is node-1, gossiping elsewhere, in a
	// namespace of its own: refused, with the reason, and it exits.
	dup := e.opts(t, "node-1")
	dup.namespace = ns + "-dup"
	dup.extra = append([]string{"--gossip", freeGossipAddr(t), "--join", g1 + "," + g2, "--gossip-key-file", key}, common...)
	d := startAgent(t, dup)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the duplicate exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the duplicate node-1 kept running:\n%s", tail(d.logs.String(), 30))
	}
	if !strings.Contains(d.logs.String(), "already used by a live agent at "+g1) {
		t.Fatalf("the duplicate did not say why:\n%s", tail(d.logs.String(), 30))
	}
	if n := len(listTasksIn(t, e.client, dup.namespace, "web")); n != 0 {
		t.Fatalf("the duplicate created %d containers", n)
	}

	// node-2 comes back with another gossip key: it says so and keeps its
	// committed replica running, untouched.
	before := listTasksIn(t, e.client, o2.namespace, "web")
	a2.kill()
	o2.extra = append([]string{"--gossip", g2, "--join", g1, "--gossip-key-file", wrongKey}, common...)
	a2 = startAgent(t, o2)
	waitFor(t, "node-2 reports the key mismatch", 30*time.Second, func() (bool, string) {
		return strings.Contains(a2.logs.String(), "different gossip key"), tail(a2.logs.String(), 5)
	})
	time.Sleep(3 * time.Second)
	after := listTasksIn(t, e.client, o2.namespace, "web")
	if len(before) != 1 || len(after) != 1 || before[0].PID != after[0].PID || after[0].Status != "running" {
		t.Fatalf("node-2's committed replica changed: before %+v after %+v", before, after)
	}
	if n := running(listTasksIn(t, e.client, o1.namespace, "web")); n != 1 {
		t.Fatalf("node-1 runs %d web replicas, want 1 (node-2 is within its grace)", n)
	}
}
