package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/latest"
	"driftless.dev/driftless/jobs"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/scheduler"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/sources/git"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

// Source is what the agent needs of the desired-state repository.
type Source interface {
	Sync(ctx context.Context) (sources.Revision, error)
	Files(ctx context.Context, commit, dir string) ([]manifest.File, error)
	Has(commit string) bool
	IsAncestor(ancestor, commit string) (bool, error)
	// Verify checks commit signatures between the commit in force and
	// head per mode (off, head, all) against trusted keys.
	Verify(from, head, mode string, trust git.Trust) error
	// Head is the followed revision as the local clone has it, without
	// fetching (what the last fetch or an adopted bundle left).
	Head() (sources.Revision, error)
	// ImportBundle imports a git bundle's objects and returns the
	// revision its followed ref names, without adopting it.
	ImportBundle(ctx context.Context, path string) (sources.Revision, error)
	// AdoptHead moves the local followed branch to commit.
	AdoptHead(commit string) error
}

// BundleInbox is the directory bundles are dropped into.
type BundleInbox interface {
	// Pending lists complete bundles, oldest first, and whether others
	// are still being written.
	Pending() (ready []string, waiting bool, err error)
	Done(path string) error
	Reject(path, reason string) error
}

// StatusStore is what the agent needs of the status branch.
type StatusStore interface {
	Read(ctx context.Context) (*status.State, error)
	Update(ctx context.Context, mutate status.Mutate) (*status.State, bool, error)
}

// Reconciler drives this node's containers toward its placements.
// ClaimDeleter deletes a claim's directory on this node.
type ClaimDeleter interface {
	Delete(b volumes.Binding) error
}

type Reconciler interface {
	Sync(ctx context.Context, desired []reconcile.DesiredReplica) (map[reconcile.ReplicaKey]manifest.ReplicaStatus, error)
	NextWake() time.Time
	// RetryImagePulls ends the image pull back-off of every replica.
	RetryImagePulls()
}

// Deps are the parts the agent is wired from. Run builds the real ones;
// tests may pass their own.
type Deps struct {
	Source     Source
	Status     StatusStore
	Reconciler Reconciler
	// Claims deletes the data of claims gone with reclaim policy Delete
	// (nil: never).
	Claims ClaimDeleter
	// Exits, when set, signals that a container exited, so the loop runs
	// a reconcile pass at once instead of at the next resync.
	Exits <-chan string
	// Cluster is gossip membership; nil runs standalone (a cluster of one).
	Cluster Membership
	// SourceChanged, when set, signals that the desired repository's refs
	// changed (fsnotify on a file:// mirror): fetch now, not at the poll.
	SourceChanged <-chan struct{}
	// Trust holds the OpenPGP keys and SSH allowed signers trusted to
	// sign desired commits (Config.Verify), read from the agent's own
	// config, never from the repository it guards.
	Trust git.Trust
	// NodeKey signs the status commits this node makes as leader; its
	// public key is published by gossip and lands in nodes/<name>.yaml.
	// Nil: status commits are not signed.
	NodeKey ssh.Signer
	// Now is the leader's clock for Jobs and CronJobs (deadlines, TTLs,
	// schedules); nil is time.Now. Tests run hours of schedule with it.
	Now func() time.Time
	// WebhookSecret, when set, enables POST /hooks/git: calls signed
	// with it trigger an immediate fetch.
	WebhookSecret []byte
	// ImagesChanged, when set, signals that new image archives were
	// imported: replicas waiting for an image are tried at once.
	ImagesChanged <-chan struct{}
	// Inbox, when set, is the bundle inbox; InboxChanged signals that
	// something was dropped into it.
	Inbox        BundleInbox
	InboxChanged <-chan struct{}
	// Proxy programs Services on this node and DNS answers its pods'
	// queries for them; nil leaves either out.
	Proxy ServiceProxy
	DNS   ServiceDNS
	// PodSubnet and PodRoutes join this node's pod subnet to the other
	// nodes' (--cluster-cidr); nil leaves it out.
	PodSubnet PodSubnet
	PodRoutes PodRoutes
}

// loaded is a desired commit decoded and validated.
type loaded struct {
	rev sources.Revision
	set *manifest.Set
}

// Agent is one node's daemon. Its state is owned by three goroutines
// (doc.go): the intake loop, the main loop and the node loop; the HTTP
// handlers read a snapshot under mu.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	deps Deps

	// owned by the node loop: claim directories deleted this run
	claimsDeleted map[string]bool

	// owned by the intake loop
	state     persisted
	inForce   *loaded
	sets      map[string]*manifest.Set
	rejection *status.Rejection // newest refusal
	srcFails  int
	srcErr    string // last fetch error logged, so a repeat is not
	// loadRetry is when a desired commit that failed to load (it could
	// not be fetched) is tried again: a hung Git server costs one fetch
	// deadline per retry, not one per pass.
	loadRetry   map[string]time.Time
	lastRemote  string
	bundleRetry time.Time // a bundle is being written: look again then

	// between the intake and the main loop
	wants     intakeWants
	intakeOut *latest.Value[intakeView]
	leading   atomic.Bool // the main loop's isLeader, for the intake

	// owned by the main loop
	view           intakeView        // the intake's, as of this pass
	rejDone        *status.Rejection // the refusal already committed
	committed      *status.State
	lastWrite      time.Time
	schemaStop     error
	deadSince      map[string]time.Time
	lastStatusRead time.Time
	// jobWake (leader's job clock) and graceWake (wall clock) are when
	// time alone changes the leader's decision; decision is this pass's.
	jobWake   time.Time
	graceWake time.Time
	decision  *decision
	next      func(leader.Input) leader.Output

	webhook chan struct{} // a valid webhook call: fetch now

	// nodeIn carries the main loop's desired replicas to the node loop;
	// nodeOut the node loop's observations back (both latest-value).
	nodeIn  *latest.Value[nodeInput]
	nodeOut *latest.Value[nodeView]
	// netIn carries the committed Service records and nodes to the
	// network loop; netProblem is its last failure ("" or nil: none),
	// noted on this node's running replicas by the node loop.
	netIn      *latest.Value[netInput]
	netProblem atomic.Pointer[string]

	mu   sync.Mutex
	snap Snapshot
}

// New builds an agent from cfg and deps. It does no I/O.
func New(cfg Config, log *slog.Logger, deps Deps) *Agent {
	if log == nil {
		log = slog.Default()
	}
	cfg.fillDeadlines()
	if cfg.Resync.Duration <= 0 {
		cfg.Resync.Duration = DefaultConfig().Resync.Duration
	}
	return &Agent{
		cfg:       cfg,
		log:       log,
		deps:      deps,
		sets:      map[string]*manifest.Set{},
		deadSince: map[string]time.Time{},

		claimsDeleted: map[string]bool{},
		loadRetry:     map[string]time.Time{},
		nodeIn:        latest.New[nodeInput](),
		intakeOut:     latest.New[intakeView](),
		wants:         intakeWants{kick: make(chan struct{}, 1)},
		next:          leader.Next,
		nodeOut:       latest.New[nodeView](),
		netIn:         latest.New[netInput](),
		snap:          Snapshot{Node: cfg.Node, StartedAt: time.Now().UTC(), Webhook: WebhookStatus{Enabled: len(deps.WebhookSecret) > 0}},
		webhook:       make(chan struct{}, 1),
	}
}

// Run runs the agent until ctx ends. It starts the HTTP API when
// cfg.Listen is set. Containers keep running when Run returns.
func (a *Agent) Run(ctx context.Context) error {
	st, err := loadPersisted(a.statePath())
	if err != nil {
		a.log.Warn("agent state unreadable, starting fresh", "err", err)
	}
	a.state = st

	if a.cfg.Listen != "" {
		ln, err := net.Listen("tcp", a.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		a.log.Info("http api listening", "addr", ln.Addr().String())
	}

	// Start from what is on disk, so that the node keeps its last state
	// when Git is unreachable; the node loop starts from the last status
	// read (the local copy when Git is unreachable). Then each loop runs
	// whatever the others are doing.
	a.startIntake(ctx)
	a.readStatus(ctx)
	a.view, _ = a.intakeOut.Get()
	a.leading.Store(a.isLeader())
	a.publishDesired(ctx)
	loops, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		a.nodeLoop(loops)
	}()
	go func() {
		defer wg.Done()
		a.networkLoop(loops)
	}()
	go func() {
		defer wg.Done()
		a.intakeLoop(loops)
	}()
	defer func() {
		stopLoops()
		wg.Wait()
	}()
	// Look at the desired repository before the first status write, so
	// that the first commit already names the desired commit.
	if a.leading.Load() {
		a.wantFetch()
	}

	wake := time.NewTimer(0)
	defer wake.Stop()
	var hints <-chan cluster.Hint
	var changes <-chan struct{}
	if a.deps.Cluster != nil {
		hints, changes = a.deps.Cluster.Hints(), a.deps.Cluster.Changes()
	}
	for {
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping; containers keep running")
			return nil
		case h := <-hints:
			if h.Kind == cluster.HintStatus {
				a.readStatus(ctx)
			} else if h.Kind == cluster.HintDesired && a.isLeader() {
				a.wantFetch()
			}
		case <-changes:
		case <-a.intakeOut.Ready():
		case <-a.nodeOut.Ready():
		case <-wake.C:
		}
		if ctx.Err() != nil {
			continue
		}
		if !a.isLeader() && time.Since(a.lastStatusRead) >= a.cfg.StatusPoll.Duration {
			a.readStatus(ctx)
		}
		a.pass(ctx)
		wake.Reset(a.nextWake())
	}
}

// pass runs one level-triggered round: as leader, decide (leader.Next,
// once) and write the status if it changed; hand the committed
// placements for this node to the node loop; record what changed.
func (a *Agent) pass(ctx context.Context) {
	a.decision = nil
	a.view, _ = a.intakeOut.Get()
	leading := a.isLeader()
	a.leading.Store(leading)
	switch {
	case a.schemaStop != nil || !leading:
	case a.view.inForce == nil && a.view.lastSeen == "" && a.view.srcFails == 0:
		// A node that just became leader looks at the desired branch
		// first, so its first commit already names the desired commit;
		// the intake's answer wakes this loop again.
		a.wantFetch()
	default:
		a.decide()
		if a.decision.changed && time.Since(a.lastWrite) >= a.cfg.StatusInterval.Duration {
			a.writeStatus(ctx)
		}
	}
	if a.schemaStop != nil {
		a.publish()
		return
	}
	a.publishDesired(ctx)
	a.publish()
}

// nextPoll is the poll interval with jitter. It does not grow while the
// repository fails: a fetch is bounded by FetchTimeout and cheap when it
// fails fast, and a server that returns is seen within one interval.
func (a *Agent) nextPoll() time.Duration {
	return sources.Jitter(a.cfg.Poll.Duration, 0.1)
}

func (a *Agent) nextWake() time.Duration {
	d := a.cfg.Resync.Duration
	if a.needsStatusWrite() {
		w := time.Until(a.lastWrite.Add(a.cfg.StatusInterval.Duration))
		if w < d {
			d = w
		}
	}
	if !a.isLeader() {
		a.jobWake, a.graceWake = time.Time{}, time.Time{}
	}
	if !a.jobWake.IsZero() {
		w := a.jobWake.Sub(a.now())
		if a.deps.Now != nil && w > time.Second {
			// A test clock may run faster than the wall clock.
			w = time.Second
		}
		if w < d {
			d = w
		}
	}
	if t := a.graceWake; !t.IsZero() {
		if w := time.Until(t); w < d {
			d = w
		}
	}
	if !a.isLeader() {
		if w := time.Until(a.lastStatusRead.Add(a.cfg.StatusPoll.Duration)); w < d {
			d = w
		}
	}
	if d < 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	return d
}

// syncDesired fetches the desired repository and takes a new head whole or
// not at all.
func (a *Agent) syncDesired(ctx context.Context) {
	rev, err := a.fetchDesired(ctx)
	now := time.Now().UTC()
	if err != nil {
		a.srcFails++
		a.setSource(func(s *SourceStatus) { s.OK = false; s.LastError = err.Error(); s.LastAttempt = now })
		// Once per kind of failure, not at every poll.
		if err.Error() != a.srcErr {
			a.log.Warn("desired repository unavailable; keeping the commit in force", "err", err, "inForce", short(a.inForceCommit()), "failures", a.srcFails)
			a.srcErr = err.Error()
		}
		// A bundle imported while this node followed may have moved the
		// local branch: take it as any new head.
		if local, herr := a.deps.Source.Head(); herr == nil && local.Commit != a.state.LastSeen {
			a.consider(ctx, local, now, false)
		}
		return
	}
	if a.srcFails > 0 {
		a.log.Info("desired repository reachable again", "remote", rev.Remote, "failures", a.srcFails)
	}
	a.srcErr = ""
	// Say which URL answered when it changes, not at every poll.
	if rev.Remote != "" && rev.Remote != a.lastRemote {
		if rev.Remote != a.cfg.Repo.Primary() {
			a.log.Warn("desired repository fetched from a mirror; the URLs before it failed", "remote", rev.Remote, "primary", a.cfg.Repo.Primary())
		} else if a.lastRemote != "" {
			a.log.Info("desired repository fetched from the first URL again", "remote", rev.Remote)
		}
	}
	if rev.Remote != "" {
		a.lastRemote = rev.Remote
	}
	a.srcFails = 0
	a.setSource(func(s *SourceStatus) {
		s.OK = true
		s.LastError = ""
		s.LastAttempt = now
		s.LastSuccess = now
		s.Head = rev.Commit
		if rev.Remote != "" {
			s.Remote = rev.Remote
		}
	})
	a.consider(ctx, rev, now, false)
}

// consider takes rev as the new head whole or not at all: fast-forward
// rule, signature policy, validation. It returns the reasons it was
// refused (nil when taken, or already seen and not forced).
func (a *Agent) consider(ctx context.Context, rev sources.Revision, now time.Time, force bool) []string {
	if !force && rev.Commit == a.state.LastSeen && (a.inForce != nil || a.state.Rejected == rev.Commit) {
		return nil
	}
	a.state.LastSeen = rev.Commit
	following := a.cfg.Branch
	if a.cfg.Ref != "" {
		following = "ref " + a.cfg.Ref
	}
	// History only moves forward: a head that does not descend from the
	// commit in force (a force push, or a rollback to an older commit) is
	// refused unless allowed. Reverting is a new commit and passes. A
	// change of what the agent follows (--branch, --ref) starts over.
	if a.inForce != nil && !a.cfg.AllowNonFastForward && a.state.Following == following {
		if ok, err := a.deps.Source.IsAncestor(a.inForce.rev.Commit, rev.Commit); err != nil || !ok {
			msg := fmt.Sprintf("commit %s does not descend from the commit in force %s (force push or rollback); refused, previous commit stays in force (revert with a new commit, or start the agent with --allow-non-fast-forward)", short(rev.Commit), short(a.inForce.rev.Commit))
			if err != nil {
				msg += ": " + err.Error()
			}
			a.reject(rev.Commit, now, []string{msg})
			return []string{msg}
		}
	}
	if a.cfg.Verify != "" && a.cfg.Verify != git.VerifyOff {
		if err := a.deps.Source.Verify(a.inForceCommit(), rev.Commit, a.cfg.Verify, a.deps.Trust); err != nil {
			a.reject(rev.Commit, now, []string{err.Error()})
			return []string{err.Error()}
		}
	}
	a.state.Following = following
	set, err := a.load(ctx, rev.Commit, nil)
	if err != nil {
		var perrs manifest.Errors
		lines := []string{err.Error()}
		if errors.As(err, &perrs) {
			lines = lines[:0]
			for _, p := range perrs {
				lines = append(lines, p.String())
			}
		}
		a.reject(rev.Commit, now, lines)
		return lines
	}
	for _, s := range set.Skipped {
		a.log.Info("not handled by driftless", "file", s.File, "line", s.Line, "kind", s.Kind, "name", s.Name, "reason", s.Reason)
	}
	for _, w := range set.Warnings {
		a.log.Warn("manifest warning", "problem", w.String())
	}
	a.inForce = &loaded{rev: rev, set: set}
	a.state.InForce = rev.Commit
	a.state.Rejected = ""
	a.log.Info("desired commit in force", "commit", short(rev.Commit), "workloads", len(set.Workloads), "subject", rev.Subject, "from", rev.Remote)
	a.savePersisted()
	return nil
}

// reject records a refused desired commit: logged, served by the API and
// committed to the status branch by the leader. Containers are untouched.
func (a *Agent) reject(commit string, now time.Time, lines []string) {
	a.rejection = &status.Rejection{Commit: commit, Time: now, Errors: lines}
	a.state.Rejected = commit
	a.log.Error("desired commit rejected; previous commit stays in force",
		"commit", short(commit), "inForce", short(a.inForceCommit()), "errors", len(lines))
	for _, l := range lines {
		a.log.Error("rejection", "commit", short(commit), "problem", l)
	}
	a.savePersisted()
}

func (a *Agent) inForceCommit() string {
	if a.inForce == nil {
		return ""
	}
	return a.inForce.rev.Commit
}

// load reads and validates the manifests of one commit, cached by commit;
// the cache keeps the commit in force, this one and those in keep (the
// commits placements name). Intake loop only.
func (a *Agent) load(ctx context.Context, commit string, keep map[string]bool) (*manifest.Set, error) {
	if s, ok := a.sets[commit]; ok {
		return s, nil
	}
	if !a.deps.Source.Has(commit) {
		// A follower learns of new desired commits from placements.
		if t, ok := a.loadRetry[commit]; ok && time.Now().Before(t) {
			return nil, fmt.Errorf("desired commit %s not fetched yet (next try in %s)", short(commit), time.Until(t).Round(time.Second))
		}
		if _, err := a.fetchDesired(ctx); err != nil {
			a.loadRetry[commit] = time.Now().Add(a.cfg.Poll.Duration)
			return nil, fmt.Errorf("fetch desired commit %s: %w", short(commit), err)
		}
		delete(a.loadRetry, commit)
		if !a.deps.Source.Has(commit) {
			a.loadRetry[commit] = time.Now().Add(a.cfg.Poll.Duration)
			return nil, fmt.Errorf("desired commit %s: not on the desired branch's remote", short(commit))
		}
	}
	files, err := a.deps.Source.Files(ctx, commit, a.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", short(commit), err)
	}
	set, err := manifest.LoadWith(files, manifest.LoadOptions{RequireSealedSecrets: a.cfg.RequireSealedSecrets})
	if err != nil {
		return nil, err
	}
	// Keep the cache small: the commit in force, the one being loaded and
	// those placements still name.
	for c := range a.sets {
		if c != commit && c != a.inForceCommit() && !keep[c] {
			delete(a.sets, c)
		}
	}
	a.sets[commit] = set
	return set, nil
}

func (a *Agent) readStatus(ctx context.Context) {
	a.lastStatusRead = time.Now()
	rctx, cancel := context.WithTimeout(ctx, a.cfg.StatusTimeout.Duration)
	st, err := a.deps.Status.Read(rctx)
	cancel()
	if errors.Is(err, status.ErrNewerSchema) {
		a.schemaStop = err
		a.log.Error("refusing to act on the status branch", "err", err)
		return
	}
	a.setStatusError(err)
	if err != nil {
		a.log.Warn("status branch unavailable; using the local copy", "err", err)
	}
	if st != nil {
		a.committed = st
	}
}

// decision is the leader's choice of one pass: leader.Next of the branch
// as it was read (base is its head), reused by the status write unless
// the branch moved meanwhile.
type decision struct {
	base    string
	out     leader.Output
	changed bool
}

// leaderInput gathers what leader.Next decides from, with cur as the
// branch: the commit in force, the gossip view, every node's report (this
// node's own from the node loop), the grace bookkeeping and the clocks.
func (a *Agent) leaderInput(cur *status.State) leader.Input {
	in := leader.Input{Node: a.cfg.Node, Current: cur, DeadSince: a.deadSince,
		NodeGrace: a.cfg.NodeGrace.Duration, Now: time.Now(), JobNow: a.now()}
	if a.view.rejection != a.rejDone {
		in.Rejection = a.view.rejection
	}
	in.Policy, _ = scheduler.ParsePolicy(a.cfg.SchedulerPolicy) // checked by Config.Validate
	in.Services, _ = a.cfg.ServiceConfig()                      // checked by Config.Validate
	in.PodNetwork, _ = a.cfg.PodNetworkConfig()                 // checked by Config.Validate
	if f := a.view.inForce; f != nil {
		in.Set, in.DesiredCommit = f.set, f.rev.Commit
	}
	for _, m := range a.members() {
		in.Members = append(in.Members, leader.Member{Name: m.Name, Alive: m.Alive, Labels: m.Meta.Labels, Address: m.Meta.NodeIP,
			CPUMilli: m.Meta.CPUMilli, MemoryBytes: m.Meta.MemoryBytes, SigningKey: m.Meta.SigningKey, VolumesBytes: m.Meta.VolumesBytes})
	}
	in.Reports = map[string]leader.Report{}
	for n, r := range a.reports() {
		if n != a.cfg.Node {
			in.Reports[n] = leader.Report{Replicas: r.Replicas, Reached: r.Reached}
		}
	}
	obs := a.observedHere()
	own := leader.Report{Replicas: make(map[string]manifest.ReplicaStatus, len(obs)), Reached: a.reachedHere()}
	for k, o := range obs {
		own.Replicas[leader.ReportKey(k.Workload, k.Index)] = o
	}
	in.Reports[a.cfg.Node] = own
	return in
}

// decide runs leader.Next once on the committed branch and keeps what it
// decided: the next status, the grace bookkeeping, when time alone
// changes the answer.
func (a *Agent) decide() {
	cur := a.committed
	if cur == nil {
		cur = (*status.State)(nil).Clone()
	}
	out := a.next(a.leaderInput(cur))
	a.take(out)
	a.decision = &decision{base: cur.Head, out: out, changed: a.committed == nil || !status.Equal(a.committed, out.Next)}
}

// take keeps the bookkeeping of one leader.Next output.
func (a *Agent) take(out leader.Output) {
	a.deadSince = out.DeadSince
	a.jobWake = out.JobWake
	a.graceWake = out.GraceWake
}

// needsStatusWrite reports whether this pass's decision differs from the
// branch; heartbeats never count.
func (a *Agent) needsStatusWrite() bool {
	return a.isLeader() && a.decision != nil && a.decision.changed
}

func (a *Agent) writeStatus(ctx context.Context) {
	var msg *status.Message
	var readTerm int64
	lost := false
	if a.committed != nil {
		readTerm = a.committed.Cluster.Term
	}
	uctx, cancel := context.WithTimeout(ctx, a.cfg.StatusTimeout.Duration)
	defer cancel()
	st, changed, err := a.deps.Status.Update(uctx, func(cur *status.State) (*status.State, *status.Message, error) {
		// Another node claimed a term since this one last read the
		// branch (its compare-and-swap won): follow it, never outbid it.
		if cur.Cluster.Leader != a.cfg.Node && cur.Cluster.Term > readTerm {
			lost = true
			return nil, nil, nil
		}
		// The pass's decision stands while the branch is where it was
		// read; a branch that moved (a CAS retry) is decided anew.
		var out leader.Output
		if d := a.decision; d != nil && d.base == cur.Head {
			out = d.out
		} else {
			out = a.next(a.leaderInput(cur))
			a.take(out)
		}
		msg = out.Message
		return out.Next, out.Message, nil
	})
	a.lastWrite = time.Now()
	if errors.Is(err, status.ErrNewerSchema) {
		a.schemaStop = err
		a.log.Error("refusing to act on the status branch", "err", err)
		return
	}
	a.setStatusError(err)
	if err != nil {
		a.log.Warn("status commit failed; will retry", "err", err)
		return
	}
	a.committed = st
	if lost {
		a.log.Info("another node leads; following it", "leader", st.Cluster.Leader, "term", st.Cluster.Term)
		return
	}
	if r := a.view.rejection; r != nil && st.Cluster.LastRejection != nil && st.Cluster.LastRejection.Commit == r.Commit {
		a.rejDone = r
	}
	if changed && msg != nil {
		a.log.Info("status committed", "commit", short(st.Head), "summary", msg.Summary, "term", st.Cluster.Term)
		if a.deps.Cluster != nil {
			a.deps.Cluster.Hint(cluster.Hint{Kind: cluster.HintStatus, Commit: st.Head})
		}
	}
}

func sortedNodes(m map[string]status.NodeStatus) []status.NodeStatus {
	out := make([]status.NodeStatus, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.DataDir, "agent-state.json") }

func (a *Agent) savePersisted() {
	if err := savePersisted(a.statePath(), a.state); err != nil {
		a.log.Error("save agent state", "err", err)
	}
}

func short(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

func keyOf(ref manifest.Ref, idx int) reconcile.ReplicaKey {
	return reconcile.ReplicaKey{Workload: ref, Index: idx}
}

// fetchDesired fetches the desired repository within FetchTimeout.
func (a *Agent) fetchDesired(ctx context.Context) (sources.Revision, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.FetchTimeout.Duration)
	defer cancel()
	return a.deps.Source.Sync(ctx)
}

// publishDesired hands the replicas the committed placements bind to this
// node, each with the spec of the commit it was placed with, to the node
// loop. A placement whose commit does not load here (not fetched yet, Git
// unreachable) holds its replicas: their containers are left as they
// are and they are reported with the reason; every other replica is
// reconciled as usual.
func (a *Agent) publishDesired(ctx context.Context) {
	if a.committed == nil {
		return
	}
	recs := a.publishNetwork().recs
	// The Service variables, once per namespace for the whole pass.
	envOf := map[string][][2]string{}
	serviceEnv := func(ns string) [][2]string {
		env, ok := envOf[ns]
		if !ok {
			env = services.EnvVars(recs, ns)
			envOf[ns] = env
		}
		return env
	}
	var desired []reconcile.DesiredReplica
	commits := map[string]bool{}
	for _, p := range a.committed.Placements {
		for _, r := range p.Replicas {
			if r.Node != a.cfg.Node {
				continue
			}
			// During a rollout an old replica runs the template of the
			// commit it was placed with.
			commit := p.CommitOf(r)
			commits[commit] = true
			set, ok := a.view.sets[commit]
			if !ok {
				desired = append(desired, reconcile.DesiredReplica{Workload: p.Workload, Index: r.Index, SpecHash: r.SpecHash, Held: heldReason(a.view, commit)})
				continue
			}
			w, ok := workloadOf(set, p)
			if !ok {
				continue
			}
			finished := p.Job != nil && jobs.Terminal(r.Status)
			desired = append(desired, reconcile.DesiredReplica{
				Workload:    p.Workload,
				Index:       r.Index,
				SpecHash:    w.SpecHash,
				Pod:         w.Template.Spec,
				Labels:      w.Template.Metadata.Labels,
				Annotations: w.Template.Metadata.Annotations,
				ConfigMaps:  w.ConfigMaps,
				Secrets:     w.Secrets,
				Finished:    finished,
				ServiceEnv:  serviceEnv(p.Workload.Namespace),
				Claims:      claimVolumes(a.committed, a.cfg.Node, w, r.Index),

				MissingServiceAccount: w.MissingServiceAccount,
			})
		}
	}
	// The intake loads what placements name (fetching what this node
	// lacks); its answer wakes the main loop, which publishes again.
	a.wantCommits(commits)
	in := nodeInput{desired: desired, desiredCommit: a.committed.Cluster.DesiredCommit}
	for _, b := range a.committed.Volumes {
		if b.Phase == volumes.Deleting && b.Node == a.cfg.Node {
			in.deleteClaims = append(in.deleteClaims, b)
		}
	}
	sort.Slice(in.deleteClaims, func(i, j int) bool { return in.deleteClaims[i].Path < in.deleteClaims[j].Path })
	if prev, ok := a.nodeIn.Get(); ok && prev.desiredCommit == in.desiredCommit && reflect.DeepEqual(prev.desired, in.desired) && reflect.DeepEqual(prev.deleteClaims, in.deleteClaims) {
		return
	}
	a.nodeIn.Put(in)
}

// claimVolumes are the bindings of replica index's claims as the status
// branch holds them, or why this node cannot mount one.
func claimVolumes(st *status.State, node string, w *manifest.Workload, index int) map[string]reconcile.ClaimVolume {
	rcs := w.ReplicaClaims(index)
	if len(rcs) == 0 {
		return nil
	}
	out := make(map[string]reconcile.ClaimVolume, len(rcs))
	for _, rc := range rcs {
		var cv reconcile.ClaimVolume
		b, ok := st.Volumes[volumes.ClaimRef(rc.Claim.Namespace, rc.Claim.Name)]
		switch {
		case rc.Missing:
			cv.Err = fmt.Sprintf("persistentvolumeclaim %q not found", rc.Claim.Name)
		case !ok:
			cv.Err = fmt.Sprintf("claim %s is not bound yet", rc.Claim.Name)
		case b.Node != "" && b.Node != node:
			cv.Err = fmt.Sprintf("claim %s is bound to node %s", rc.Claim.Name, b.Node)
		default:
			cv.Binding = b
		}
		out[rc.Volume] = cv
	}
	return out
}
