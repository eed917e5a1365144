package reconcile

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"driftless.dev/driftless/manifest"
)

// scriptedExec answers exec probes by command name, recording when each
// ran.
type scriptedExec struct {
	mu    sync.Mutex
	ok    map[string]func(n int) bool
	calls map[string][]time.Time
}

func (s *scriptedExec) Exec(_ context.Context, _ string, cmd []string) (int, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[cmd[0]] = append(s.calls[cmd[0]], time.Now())
	if s.ok[cmd[0]](len(s.calls[cmd[0]])) {
		return 0, nil, nil
	}
	return 1, []byte("no"), nil
}

func (s *scriptedExec) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls[name])
}

func execProbe(name string, delay, success, failure int32) *manifest.Probe {
	return &manifest.Probe{ProbeHandler: manifest.ProbeHandler{Exec: &manifest.ExecAction{Command: []string{name}}},
		InitialDelaySeconds: delay, TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: success, FailureThreshold: failure}
}

// The startup probe gates liveness and readiness; initialDelaySeconds and
// successThreshold hold readiness back; failureThreshold startup failures
// kill the container.
func TestProberStartupGatesAndThresholds(t *testing.T) {
	ex := &scriptedExec{calls: map[string][]time.Time{}, ok: map[string]func(int) bool{
		"startup":   func(n int) bool { return n >= 2 }, // passes on its 2nd run
		"liveness":  func(int) bool { return true },
		"readiness": func(int) bool { return true },
	}}
	p := newProber(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.close()
	var killed []string
	var mu sync.Mutex
	p.kill = func(_ context.Context, w probeWork, reason string) {
		mu.Lock()
		killed = append(killed, w.ID+": "+reason)
		mu.Unlock()
	}
	c := manifest.Container{Name: "app", StartupProbe: execProbe("startup", 0, 1, 3),
		LivenessProbe: execProbe("liveness", 0, 1, 3), ReadinessProbe: execProbe("readiness", 1, 2, 1)}
	start := time.Now()
	p.sync([]probeWork{{target: target{ID: "a", Container: c, Exec: ex}, Gen: "1", StartedAt: start}})
	if p.ready("a", c) {
		t.Fatal("ready before any probe ran")
	}
	deadline := time.Now().Add(8 * time.Second)
	for !p.ready("a", c) {
		if time.Now().After(deadline) {
			t.Fatalf("never ready; calls %v", ex.calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	ex.mu.Lock()
	startupDone := ex.calls["startup"][1]
	firstLive, firstReady := ex.calls["liveness"][0], ex.calls["readiness"][0]
	ex.mu.Unlock()
	if firstLive.Before(startupDone) || firstReady.Before(startupDone) {
		t.Fatal("liveness or readiness ran before the startup probe passed")
	}
	// startup passes at ~1 s; readiness waits for its 1 s initial delay
	// from the container start, then needs two successes 1 s apart.
	if took < 1900*time.Millisecond {
		t.Fatalf("ready after %s: successThreshold 2 not honoured", took)
	}
	if len(killed) != 0 {
		t.Fatalf("killed: %v", killed)
	}

	// A new start of the container (new generation) starts over.
	p.sync([]probeWork{{target: target{ID: "a", Container: c, Exec: ex}, Gen: "2", StartedAt: time.Now()}})
	if p.ready("a", c) {
		t.Fatal("still ready after a restart")
	}
	// Gone from the list: the worker stops.
	p.sync(nil)
	time.Sleep(100 * time.Millisecond) // a probe already running may finish
	n := ex.count("startup") + ex.count("liveness") + ex.count("readiness")
	time.Sleep(1500 * time.Millisecond)
	if m := ex.count("startup") + ex.count("liveness") + ex.count("readiness"); m != n {
		t.Fatalf("probes ran after the container went: %d -> %d", n, m)
	}
}

func TestProberLivenessKills(t *testing.T) {
	ex := &scriptedExec{calls: map[string][]time.Time{}, ok: map[string]func(int) bool{"live": func(int) bool { return false }}}
	p := newProber(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.close()
	killed := make(chan string, 1)
	p.kill = func(_ context.Context, w probeWork, reason string) { killed <- reason }
	c := manifest.Container{Name: "app", LivenessProbe: execProbe("live", 0, 1, 2)}
	p.sync([]probeWork{{target: target{ID: "a", Container: c, Exec: ex}, Gen: "1", StartedAt: time.Now()}})
	select {
	case r := <-killed:
		if n := ex.count("live"); n != 2 {
			t.Fatalf("killed after %d failures, want failureThreshold 2 (%s)", n, r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not killed")
	}
	if !p.ready("a", manifest.Container{Name: "app", LivenessProbe: c.LivenessProbe}) {
		t.Fatal("a container with only a liveness probe counts as ready while it runs")
	}
}
