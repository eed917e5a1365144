package agent

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/testenv"
)

func freeGossipAddr(t *testing.T) string { return testenv.FreeGossipAddr(t) }

func aliveCount(c *cluster.Cluster) int {
	n := 0
	for _, m := range c.Members() {
		if m.Alive {
			n++
		}
	}
	return n
}

// The documented rotation, done by editing each node's key file (in
// place, by rename, or followed by SIGHUP), keeps all three nodes
// members throughout.
func TestKeyFileRotation(t *testing.T) {
	old := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	next := base64.StdEncoding.EncodeToString([]byte("the-new-key-32-bytes-long-000000"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	type node struct {
		c    *cluster.Cluster
		file string
		hup  chan os.Signal
	}
	var nodes []node
	for i, name := range []string{"a", "b", "c"} {
		file := filepath.Join(t.TempDir(), "gossip.key")
		if err := os.WriteFile(file, []byte(old+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		keys, err := cluster.LoadKeyFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var join []string
		if i > 0 {
			join = []string{nodes[0].c.LocalAddr()}
		}
		c, err := cluster.Start(ctx, cluster.Config{NodeName: name, BindAddr: freeGossipAddr(t), Join: join, Keys: keys,
			Logger: quiet, ProbeInterval: 200 * time.Millisecond, SuspicionMult: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Shutdown() })
		n := node{c: c, file: file, hup: make(chan os.Signal, 1)}
		go reloadKeys(ctx, file, c, n.hup, quiet)
		nodes = append(nodes, n)
	}
	waitAll := func(what string, cond func(node) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for _, n := range nodes {
			for !cond(n) {
				if time.Now().After(deadline) {
					t.Fatalf("timed out: %s (node %s: alive %d, keys %v)", what, n.c.Members()[0].Name, aliveCount(n.c), n.c.KeyIDs())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitAll("3 alive", func(n node) bool { return aliveCount(n.c) == 3 })

	minAlive := 3
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, n := range nodes {
				if a := aliveCount(n.c); a < minAlive {
					minAlive = a
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// Three ways to change a file: in place, by rename, in place plus
	// SIGHUP.
	write := func(i int, content string) {
		n := nodes[i]
		switch i {
		case 0:
			os.WriteFile(n.file, []byte(content), 0o600)
		case 1:
			tmp := n.file + ".new"
			os.WriteFile(tmp, []byte(content), 0o600)
			os.Rename(tmp, n.file)
		case 2:
			os.WriteFile(n.file, []byte(content), 0o600)
			n.hup <- syscall.SIGHUP
		}
	}
	oldID := cluster.KeyID([]byte("0123456789abcdef"))
	nextID := cluster.KeyID([]byte("the-new-key-32-bytes-long-000000"))
	for _, round := range []struct {
		content string
		want    string
	}{
		{old + "\n" + next + "\n", oldID + "," + nextID},
		{next + "\n" + old + "\n", nextID + "," + oldID},
		{next + "\n", nextID},
	} {
		for i := range nodes {
			write(i, round.content)
		}
		waitAll("keys "+round.want, func(n node) bool { return strings.Join(n.c.KeyIDs(), ",") == round.want })
		time.Sleep(time.Second)
	}
	// A broken file keeps the keys in use.
	write(1, "garbage\n")
	time.Sleep(500 * time.Millisecond)
	if ids := nodes[1].c.KeyIDs(); len(ids) != 1 || ids[0] != nextID {
		t.Fatalf("a broken key file changed the keys: %v", ids)
	}
	cancel()
	<-done
	if minAlive != 3 {
		t.Fatalf("membership dropped to %d during the rotation", minAlive)
	}
}
