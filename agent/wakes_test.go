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

// A failing desired repository is polled less and less often (up to 8×
// the interval, 5 minutes past it at most), with jitter; a success goes
// back to the interval.
func TestNextPollBacksOff(t *testing.T) {
	a := New(Config{Node: "n1", Poll: Duration{Duration: 10 * time.Second}}, nil, Deps{})
	within := func(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
	for fails, want := range map[int][2]time.Duration{
		0: {10 * time.Second, 11 * time.Second},
		1: {20 * time.Second, 30 * time.Second},
		2: {40 * time.Second, 60 * time.Second},
		3: {80 * time.Second, 120 * time.Second},
		9: {80 * time.Second, 120 * time.Second},
	} {
		a.srcFails = fails
		for i := 0; i < 50; i++ {
			if d := a.nextPoll(); !within(d, want[0], want[1]) {
				t.Fatalf("%d failures: next poll in %s, want %s..%s", fails, d, want[0], want[1])
			}
		}
	}
	a = New(Config{Node: "n1", Poll: Duration{Duration: 5 * time.Minute}}, nil, Deps{})
	a.srcFails = 5
	if d := a.nextPoll(); d > 15*time.Minute || d < 10*time.Minute {
		t.Fatalf("capped back-off: %s", d)
	}
}
