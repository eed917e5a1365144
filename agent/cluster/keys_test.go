package cluster

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rotating the key in three rounds (install, use, remove) across three
// nodes never loses a member; afterwards only the new key joins.
func TestKeyRotation(t *testing.T) {
	k1, k2 := key, []byte("fedcba9876543210")
	a := start(t, "node-a", nil)
	b := start(t, "node-b", []string{a.LocalAddr()})
	c := start(t, "node-c", []string{a.LocalAddr()})
	nodes := []*Cluster{a, b, c}
	for _, n := range nodes {
		n := n
		eventually(t, "3 alive members", 10*time.Second, func() bool { return alive(n) == 3 })
	}

	// Watch membership on every node for the whole rotation.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	lost := map[string]string{}
	for _, n := range nodes {
		n := n
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				for _, m := range n.Members() {
					if !m.Alive {
						mu.Lock()
						lost[n.cfg.NodeName] = m.Name
						mu.Unlock()
					}
				}
			}
		}()
	}
	// Each round is done on every node, one after the other, and left
	// running for several probe intervals (suspicion would show by then).
	for _, round := range []struct {
		name string
		keys [][]byte
	}{
		{"install the new key", [][]byte{k1, k2}},
		{"use the new key", [][]byte{k2, k1}},
		{"remove the old key", [][]byte{k2}},
	} {
		for _, n := range nodes {
			if err := n.SetKeys(round.keys); err != nil {
				t.Fatalf("%s on %s: %v", round.name, n.cfg.NodeName, err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(lost) > 0 {
		t.Fatalf("members seen not alive during the rotation (observer -> member): %v", lost)
	}
	for _, n := range nodes {
		if ids := n.KeyIDs(); len(ids) != 1 || ids[0] != KeyID(k2) {
			t.Fatalf("%s keys %v, want only %s", n.cfg.NodeName, ids, KeyID(k2))
		}
	}

	// The old key no longer gets in; the new one does.
	old := start(t, "node-old", []string{a.LocalAddr()}, func(c *Config) { c.SecretKey = k1 })
	time.Sleep(time.Second)
	if alive(old) != 1 || alive(a) != 3 {
		t.Fatalf("a node with the removed key joined: %d %d", alive(old), alive(a))
	}
	old.Shutdown()
	d := start(t, "node-d", []string{a.LocalAddr()}, func(c *Config) { c.Keys = [][]byte{k2} })
	eventually(t, "node-d joins with the new key", 10*time.Second, func() bool { return alive(d) == 4 })

	// Skipping the install round is what breaks a cluster: node-d
	// switching alone to a key nobody knows is declared dead.
	if err := d.SetKeys([][]byte{[]byte("0000000000000000")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node-d dead after a key nobody knows", 15*time.Second, func() bool { return alive(a) == 3 })
}

func TestLoadKeyFile(t *testing.T) {
	k1, k2 := base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba98"))
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "k")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys, err := LoadKeyFile(write("# primary first\n" + k2 + "\n\n" + k1 + "\n" + k2 + "\n"))
	if err != nil || len(keys) != 2 || len(keys[0]) != 24 || string(keys[1]) != string(key) {
		t.Fatalf("keys %q %v", keys, err)
	}
	for content, want := range map[string]string{
		"":                   "no key",
		"# only a comment\n": "no key",
		"not base64!\n":      ":1: not base64",
		k1 + "\n" + "YWJj\n": ":2: 3 bytes",
	} {
		if _, err := LoadKeyFile(write(content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: %v, want %q", content, err, want)
		}
	}
}
