package agent

import (
	"context"
	"testing"
	"time"
)

func TestMergeWakes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exits := make(chan string)
	changes := make(chan struct{}, 1)
	out := mergeWakes(ctx, exits, changes)
	recv := func(what string) string {
		t.Helper()
		select {
		case id := <-out:
			return id
		case <-time.After(2 * time.Second):
			t.Fatalf("no wake for %s", what)
		}
		return ""
	}
	exits <- "c1"
	if id := recv("exit"); id != "c1" {
		t.Fatalf("exit forwarded as %q", id)
	}
	changes <- struct{}{}
	recv("probe change")
	// A closed exit stream (containerd gone) leaves probe changes working.
	close(exits)
	changes <- struct{}{}
	recv("probe change after exits closed")
	// Without an exit stream at all.
	changes2 := make(chan struct{}, 1)
	out2 := mergeWakes(ctx, nil, changes2)
	changes2 <- struct{}{}
	select {
	case <-out2:
	case <-time.After(2 * time.Second):
		t.Fatal("no wake without an exit stream")
	}
}
