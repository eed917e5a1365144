package reconcile

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"driftless.dev/driftless/manifest"
)

// prober runs the probes of running containers: one goroutine per probed
// container, started when the container runs and cancelled when it stops
// or goes. Results are read by observe; a change of readiness or a
// liveness kill is signalled on changed so that a pass comes sooner.
type prober struct {
	log     *slog.Logger
	changed chan struct{}
	// kill stops a container whose liveness or startup probe failed (its
	// preStop hook first); the restart policy and back-off do the rest.
	kill func(ctx context.Context, w probeWork, reason string)

	mu      sync.Mutex
	workers map[string]*probeWorker // by container id
	wg      sync.WaitGroup
	closed  bool
}

// probeWork is one running container to probe.
type probeWork struct {
	target
	// Gen changes when the container is started again: probe state is
	// reset, as the kubelet does.
	Gen       string
	StartedAt time.Time
	Grace     time.Duration
	PreStop   *manifest.LifecycleHandler
}

type probeWorker struct {
	gen    string
	cancel context.CancelFunc
	// guarded by prober.mu
	started, ready bool
	hasStartup     bool
	hasReadiness   bool
}

func newProber(log *slog.Logger) *prober {
	return &prober{log: log, changed: make(chan struct{}, 1), workers: map[string]*probeWorker{}}
}

func (p *prober) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// sync makes the set of workers match the running probed containers.
func (p *prober) sync(work []probeWork) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	keep := map[string]bool{}
	for _, w := range work {
		keep[w.ID] = true
		if cur, ok := p.workers[w.ID]; ok && cur.gen == w.Gen {
			continue
		} else if ok {
			cur.cancel()
		}
		ctx, cancel := context.WithCancel(context.Background())
		pw := &probeWorker{gen: w.Gen, cancel: cancel,
			started: w.Container.StartupProbe == nil, hasStartup: w.Container.StartupProbe != nil,
			hasReadiness: w.Container.ReadinessProbe != nil}
		p.workers[w.ID] = pw
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.run(ctx, w, pw)
		}()
	}
	for id, pw := range p.workers {
		if !keep[id] {
			pw.cancel()
			delete(p.workers, id)
		}
	}
}

// ready reports whether a running container counts as ready: its startup
// probe passed (if any) and its readiness probe passes (if any).
func (p *prober) ready(id string, c manifest.Container) bool {
	if c.StartupProbe == nil && c.ReadinessProbe == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pw, ok := p.workers[id]
	if !ok {
		return false
	}
	if !pw.started {
		return false
	}
	return !pw.hasReadiness || pw.ready
}

// started reports whether a container's startup probe passed (true when
// it has none). Sidecars gate the next init container on it.
func (p *prober) started(id string, c manifest.Container) bool {
	if c.StartupProbe == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pw, ok := p.workers[id]
	return ok && pw.started
}

func (p *prober) close() {
	p.mu.Lock()
	p.closed = true
	for id, pw := range p.workers {
		pw.cancel()
		delete(p.workers, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

type probeState struct {
	kind       string // startup, liveness, readiness
	probe      *manifest.Probe
	next       time.Time
	succ, fail int32
}

// run probes one container until ctx ends or a liveness/startup failure
// kills it. Probes of one container run one at a time, each bounded by
// its timeoutSeconds.
func (p *prober) run(ctx context.Context, w probeWork, pw *probeWorker) {
	c := w.Container
	first := func(pr *manifest.Probe) time.Time {
		t := w.StartedAt.Add(time.Duration(pr.InitialDelaySeconds) * time.Second)
		if now := time.Now(); t.Before(now) {
			return now
		}
		return t
	}
	var startup *probeState
	var others []*probeState
	if c.StartupProbe != nil {
		startup = &probeState{kind: "startup", probe: c.StartupProbe, next: first(c.StartupProbe)}
	}
	if c.LivenessProbe != nil {
		others = append(others, &probeState{kind: "liveness", probe: c.LivenessProbe})
	}
	if c.ReadinessProbe != nil {
		others = append(others, &probeState{kind: "readiness", probe: c.ReadinessProbe})
	}
	if startup == nil {
		for _, s := range others {
			s.next = first(s.probe)
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		active := others
		if startup != nil {
			active = []*probeState{startup}
		}
		if len(active) == 0 {
			<-ctx.Done()
			return
		}
		s := active[0]
		for _, x := range active[1:] {
			if x.next.Before(s.next) {
				s = x
			}
		}
		timer.Reset(time.Until(s.next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, time.Duration(s.probe.TimeoutSeconds)*time.Second)
		ok, msg := runHandler(pctx, w.target, s.probe.ProbeHandler)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		s.next = now.Add(time.Duration(s.probe.PeriodSeconds) * time.Second)
		if ok {
			s.succ, s.fail = s.succ+1, 0
		} else {
			s.succ, s.fail = 0, s.fail+1
			p.log.Debug("probe failed", "id", w.ID, "probe", s.kind, "failures", s.fail, "reason", msg)
		}
		switch s.kind {
		case "startup":
			if ok {
				startup = nil
				for _, o := range others {
					o.next = first(o.probe)
				}
				p.set(w.ID, pw, func() { pw.started = true })
			} else if s.fail >= s.probe.FailureThreshold {
				p.log.Info("startup probe failed; restarting container", "id", w.ID, "reason", msg)
				p.kill(ctx, withProbeGrace(w, s.probe), "startup probe failed: "+msg)
				p.notify()
				return
			}
		case "liveness":
			if !ok && s.fail >= s.probe.FailureThreshold {
				p.log.Info("liveness probe failed; restarting container", "id", w.ID, "reason", msg)
				p.kill(ctx, withProbeGrace(w, s.probe), "liveness probe failed: "+msg)
				p.notify()
				return
			}
		case "readiness":
			if ok && s.succ >= s.probe.SuccessThreshold {
				p.set(w.ID, pw, func() { pw.ready = true })
			} else if !ok && s.fail >= s.probe.FailureThreshold {
				p.set(w.ID, pw, func() { pw.ready = false })
			}
		}
	}
}

// set changes a worker's result and signals a change if it is still the
// current worker of the container.
func (p *prober) set(id string, pw *probeWorker, f func()) {
	p.mu.Lock()
	before := [2]bool{pw.started, pw.ready}
	f()
	changed := before != [2]bool{pw.started, pw.ready} && p.workers[id] == pw
	p.mu.Unlock()
	if changed {
		p.notify()
	}
}

// withProbeGrace applies a probe's own terminationGracePeriodSeconds.
func withProbeGrace(w probeWork, pr *manifest.Probe) probeWork {
	if pr.TerminationGracePeriodSeconds != nil {
		w.Grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
	}
	return w
}
