package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/agent/cluster"
	"driftless.dev/driftless/internal/latest"
	"driftless.dev/driftless/internal/peerauth"
	"driftless.dev/driftless/leader"
	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/metrics"
	"driftless.dev/driftless/reconcile"
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
	// Metrics records events for /metrics (nil: none).
	Metrics *metrics.Metrics
	// PeerTokens authenticate the CLI's calls to the peer listener
	// (derived from the gossip keys, following their reloads; none: off,
	// unless gossip is insecure). Nodes sign their calls with NodeKey.
	PeerTokens *peerauth.Tokens
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

	// claim directories deleted (or being deleted) this run
	claimsDeleted sync.Map // path → true, deleted or being deleted
	// nodeKick asks the node loop for a pass now (a reconcile call);
	// passes counts the passes it finished.
	nodeKick chan struct{}
	passes   atomic.Int64
	// replays remembers the node signatures of recent peer calls.
	replays *peerauth.Replays
	// hist is the dashboard's last history view.
	hist historyCache

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
	loadRetry map[string]time.Time
	// fetchNotBefore is when the desired repository's Git host may be
	// asked again (it answered 429 or 503 with a Retry-After).
	fetchNotBefore time.Time
	lastRemote     string
	bundleRetry    time.Time // a bundle is being written: look again then

	// between the intake and the main loop
	wants     intakeWants
	intakeOut *latest.Value[intakeView]
	leading   atomic.Bool // the main loop's isLeader, for the intake
	// leaderPeer is the leader's peer listener as this follower last read
	// it (zero when leading, or the leader has none): the last peer it
	// asks for new status and desired commits.
	leaderPeer atomic.Pointer[peerSource]
	// peerFails is when each peer listener last failed to serve (shared
	// by the main and the intake loop).
	peerMu    sync.Mutex
	peerFails map[string]time.Time

	// owned by the main loop
	view           intakeView        // the intake's, as of this pass
	rejDone        *status.Rejection // the refusal already committed
	committed      *status.State
	lastWrite      time.Time
	schemaStop     error
	deadSince      map[string]time.Time
	lastStatusRead time.Time
	// statusNotBefore is when the status branch's Git host may be asked
	// again (it answered 429 or 503 with a Retry-After).
	statusNotBefore time.Time
	// hinted is a status commit a hint named that is not read yet;
	// statusLookAt is when a newly announced one is read (see spread).
	hinted       string
	statusLookAt time.Time
	lookForPeer  bool // statusLookAt waits for a peer other than the leader
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
	// snapState is the status branch as last read, snapSubject the
	// subject of the desired commit in force (for /metrics).
	snapState   *status.State
	snapSubject string
	// watch tells open dashboards that the state changed.
	watch watchers
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

		nodeKick:  make(chan struct{}, 1),
		replays:   peerauth.NewReplays(200000),
		loadRetry: map[string]time.Time{}, peerFails: map[string]time.Time{},
		nodeIn:    latest.New[nodeInput](),
		intakeOut: latest.New[intakeView](),
		wants:     intakeWants{kick: make(chan struct{}, 1)},
		next:      leader.Next,
		nodeOut:   latest.New[nodeView](),
		netIn:     latest.New[netInput](),
		snap:      Snapshot{Node: cfg.Node, StartedAt: time.Now().UTC(), Webhook: WebhookStatus{Enabled: len(deps.WebhookSecret) > 0}},
		webhook:   make(chan struct{}, 1),
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
	// The peer listener is a convenience of operators and other nodes:
	// one that cannot listen leaves the node without it, not down.
	if stopPeer, err := a.servePeer(ctx); err != nil {
		a.log.Error("peer listener off", "err", err)
	} else {
		defer stopPeer()
	}

	// Start from what is on disk, so that the node keeps its last state
	// when Git is unreachable; the node loop starts from the last status
	// read (the local copy when Git is unreachable). Then each loop runs
	// whatever the others are doing.
	a.startIntake(ctx)
	a.announceDesired()
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
	var changes, announced, reportsIn <-chan struct{}
	if a.deps.Cluster != nil {
		hints, changes = a.deps.Cluster.Hints(), a.deps.Cluster.Changes()
		if an, ok := a.deps.Cluster.(interface{ Announced() <-chan struct{} }); ok {
			announced = an.Announced()
		}
		if r, ok := a.deps.Cluster.(interface{ ReportsChanged() <-chan struct{} }); ok {
			reportsIn = r.ReportsChanged()
		}
	}
	for {
		select {
		case <-reportsIn:
			// Only the leader decides from other nodes' reports.
			if !a.isLeader() {
				continue
			}
		case <-announced:
			// Another node holds other commits: a follower may read a
			// status commit from it. Nothing else changed, so no pass
			// unless the read brought something.
			if ctx.Err() != nil || a.isLeader() {
				continue
			}
			head := a.committedHead()
			a.followStatus(ctx)
			if a.committedHead() == head {
				wake.Reset(a.nextWake())
				continue
			}
		case <-ctx.Done():
			a.log.Info("agent stopping; containers keep running")
			return nil
		case h := <-hints:
			if h.Kind == cluster.HintStatus && a.peerFetching() {
				// Read by followStatus, from a peer that has it.
				a.hinted = h.Commit
			} else if h.Kind == cluster.HintStatus {
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
		if !a.isLeader() {
			a.followStatus(ctx)
		}
		a.pass(ctx)
		wake.Reset(a.nextWake())
	}
}

func (a *Agent) committedHead() string {
	if a.committed == nil {
		return ""
	}
	return a.committed.Head
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
		start := time.Now()
		a.decide()
		if a.decision.changed && time.Since(a.lastWrite) >= a.cfg.StatusInterval.Duration && !time.Now().Before(a.statusNotBefore) {
			a.writeStatus(ctx)
		}
		a.deps.Metrics.Loop(metrics.LoopLeader, time.Since(start))
	}
	if a.schemaStop != nil {
		a.publish()
		return
	}
	a.publishDesired(ctx)
	a.publish()
	a.reportTargets()
}

// nextPoll is the wait before the next poll of the desired branch: the
// poll interval, doubled for each fetch failed in a row up to eight
// times it (at most 5 minutes longer than it), with up to 10% (50% after
// failures) more at random, so that a Git host coming back from an outage
// is not asked by every agent at once. Webhook calls and hints still
// fetch at once, unless the Git host asked to wait (Retry-After). Intake
// loop only.
func (a *Agent) nextPoll() time.Duration {
	d := a.cfg.Poll.Duration
	if n := a.srcFails; n > 0 && d > 0 {
		backoff := d << min(n, 3)
		backoff = min(backoff, d+5*time.Minute)
		// The Git host's Retry-After, when longer, and then some at
		// random, so that the fleet does not come back at one instant.
		if w := time.Until(a.fetchNotBefore); w > backoff {
			return w + time.Duration(rand.Int64N(int64(d)))
		}
		return sources.Jitter(backoff, 0.5)
	}
	return sources.Jitter(d, 0.1)
}

func (a *Agent) nextWake() time.Duration {
	d := a.cfg.Resync.Duration
	if a.needsStatusWrite() {
		w := max(time.Until(a.lastWrite.Add(a.cfg.StatusInterval.Duration)), time.Until(a.statusNotBefore))
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
		if t := a.statusLookAt; !t.IsZero() {
			d = min(d, time.Until(t))
		}
	}
	if d < 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	return d
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
