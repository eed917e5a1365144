// Package cluster is gossip membership on hashicorp/memberlist behind a
// small API: who is alive, each node's metadata (labels, capacity), each
// node's observed replica report, and small hints ("the status branch
// moved"). Gossip carries liveness and hints only; the truth is in Git.
//
// memberlist's callbacks never block here: payloads are copied and handed
// to channels with non-blocking sends. It must never carry desired state
// or placements: those are read from Git.
package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"driftless.dev/driftless/internal/backoff"
	"driftless.dev/driftless/manifest"
)

// NodeMeta is published in memberlist's node metadata (at most 512 bytes
// encoded; Start and UpdateMeta refuse more, memberlist would panic).
type NodeMeta struct {
	Labels      map[string]string `json:"l,omitempty"`
	CPUMilli    int64             `json:"c,omitempty"`
	MemoryBytes int64             `json:"m,omitempty"`
	Version     string            `json:"v,omitempty"`
	API         string            `json:"a,omitempty"`
	// Started is when this agent process started (Unix nanoseconds). Of
	// two live agents claiming one node name, the later one is refused.
	Started int64 `json:"s,omitempty"`
	// SigningKey is the public SSH key signing the node's status commits.
	SigningKey string `json:"k,omitempty"`
	// NodeIP is the node's address between nodes (pod routes, NodePorts).
	NodeIP string `json:"i,omitempty"`
	// VolumesBytes is the size of the file system of the node's volumes
	// directory: what its claims may add up to.
	VolumesBytes int64 `json:"d,omitempty"`
	// Arch is the node's architecture (GOARCH: amd64, arm64).
	Arch string `json:"r,omitempty"`
	// Peer is the address of the node's peer listener ("" when off).
	Peer string `json:"p,omitempty"`
	// StatusHead and DesiredHead announce the newest status commit and
	// desired commit this node holds, which its peer listener serves:
	// a follower fetches a new commit from a peer that announces it.
	// Left out when they would push the metadata over its limit.
	StatusHead  string `json:"hs,omitempty"`
	DesiredHead string `json:"hd,omitempty"`
}

// Member is one node as gossip sees it.
type Member struct {
	Name  string
	Addr  string
	Alive bool
	Meta  NodeMeta
}

// Report is a node's observed state of its replicas, keyed by
// "namespace/Kind/name/index".
type Report struct {
	Node string `json:"node"`
	// Incarnation is when the reporting agent process started (Unix
	// nanoseconds); Seq counts its reports from 1. A report is newer
	// than another when its incarnation is, or, of one incarnation, its
	// sequence: a restarted agent's first report replaces whatever its
	// previous run sent, however many that was.
	Incarnation int64                             `json:"inc"`
	Seq         uint64                            `json:"seq"`
	Replicas    map[string]manifest.ReplicaStatus `json:"replicas"`
	// Reached is the desired commit whose placements for this node all
	// run (and are ready, or finished for Jobs); empty until then.
	Reached string `json:"reached,omitempty"`
}

// HintKind says which branch moved.
type HintKind string

// Hint kinds: the status branch has a new commit (followers read it), or
// the desired branch may have (the leader fetches it).
const (
	HintStatus  HintKind = "status"
	HintDesired HintKind = "desired"
)

// Hint tells other nodes that something moved in Git, so that they look
// sooner than their next poll.
type Hint struct {
	ID     string   `json:"id"`
	Kind   HintKind `json:"kind"`
	Commit string   `json:"commit"`
}

// Config configures membership.
type Config struct {
	NodeName string
	// BindAddr is "ip:port" to gossip on (port 0: pick one).
	BindAddr string
	// Join lists seeds "ip:port"; joins retry in the background, so a
	// seed that is not up yet is never fatal.
	Join []string
	// SecretKey encrypts gossip (16, 24 or 32 bytes); required unless
	// Insecure or Keys is set.
	SecretKey []byte
	// Keys is the keyring: the first key encrypts, every key decrypts
	// (SecretKey, when set, is used only if Keys is empty). Several keys
	// let a cluster rotate its key without a restart: see SetKeys.
	Keys     [][]byte
	Insecure bool
	Meta     NodeMeta
	Logger   *slog.Logger
	// ProbeInterval and SuspicionMult tune failure detection (defaults
	// from memberlist's LAN profile); tests shorten them.
	ProbeInterval time.Duration
	SuspicionMult int
}

// LoadKeyFile reads gossip keys: one base64 key (16/24/32 bytes once
// decoded, as `consul keygen` prints it) per line, the first one primary;
// blank lines and lines starting with # are ignored.
func LoadKeyFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	var keys [][]byte
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("gossip key %s:%d: not base64", path, i+1)
		}
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("gossip key %s:%d: %d bytes, want 16, 24 or 32", path, i+1, len(k))
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key %s: no key", path)
	}
	return keys, nil
}

// KeyID names a key in logs without revealing it: the first 8 hex
// digits of its SHA-256.
func KeyID(k []byte) string {
	h := sha256.Sum256(k)
	return hex.EncodeToString(h[:4])
}

// Cluster is a running membership. Methods are safe for concurrent use.
type Cluster struct {
	cfg Config
	ml  *memberlist.Memberlist
	kr  *memberlist.Keyring // nil without encryption
	// queue exists before memberlist starts (its callbacks use it at
	// once); its node count comes from started, set once Create returns.
	queue   *memberlist.TransmitLimitedQueue
	started atomic.Pointer[memberlist.Memberlist]
	log     *slog.Logger

	mu   sync.Mutex
	meta []byte
	// own is this node's metadata as last set (heads included); meta is
	// its encoding as published.
	own NodeMeta
	// announce asks the announcer to publish meta (it changed).
	announce chan struct{}
	tooBig   bool // the heads did not fit; warned once
	reports  map[string]Report
	seen     map[string]time.Time // hint ids
	seq      uint64
	// members is this process's own copy of the membership, written in
	// the event callbacks (memberlist holds its lock there): memberlist's
	// Node values must not be read outside them.
	members map[string]Member
	// addrs holds each live node's name and address for SendReliable.
	addrs map[string]memberlist.Node
	// resend asks the sender to send this node's report to every alive
	// member (it changed, or a node joined that has not seen it).
	resend chan struct{}

	hints     chan Hint
	changes   chan struct{}
	announced chan struct{}
	reportsIn chan struct{}
	// reportTo names the nodes this node's report goes to (the leader
	// and the one that would succeed it); nil: every alive member.
	reportTo map[string]bool
	fatal    chan error
	cancel   context.CancelFunc
	once     sync.Once
}

// ErrNameInUse means another live agent already gossips under this node's
// name. The later of the two is refused: it must not act as that node.
var ErrNameInUse = errors.New("node name already in use")

// Start creates the memberlist and starts joining the seeds.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Keys) == 0 && len(cfg.SecretKey) > 0 {
		cfg.Keys = [][]byte{cfg.SecretKey}
	}
	if len(cfg.Keys) == 0 && !cfg.Insecure {
		return nil, errors.New("gossip needs an encryption key (--gossip-key-file) or --insecure-gossip")
	}
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, reports: map[string]Report{}, seen: map[string]time.Time{},
		members: map[string]Member{}, addrs: map[string]memberlist.Node{}, resend: make(chan struct{}, 1), announce: make(chan struct{}, 1),
		hints: make(chan Hint, 64), changes: make(chan struct{}, 1), announced: make(chan struct{}, 1), reportsIn: make(chan struct{}, 1), fatal: make(chan error, 1)}
	if cfg.Meta.Started == 0 {
		cfg.Meta.Started = time.Now().UnixNano()
		c.cfg.Meta.Started = cfg.Meta.Started
	}
	if c.meta, err = encodeMeta(cfg.Meta); err != nil {
		return nil, err
	}
	c.own = cfg.Meta
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keys: %w", err)
		}
		mc.Keyring = kr
		c.kr = kr
	}
	mc.Delegate = (*delegate)(c)
	mc.Events = (*events)(c)
	mc.Conflict = (*conflicts)(c)
	// A node that died may come back under the same name at another
	// address (a new IP after a reboot): allow it once the old one has
	// been dead this long.
	mc.DeadNodeReclaimTime = 30 * time.Second
	mc.LogOutput = slogWriter{c.log}
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
		mc.ProbeTimeout = cfg.ProbeInterval / 2
		mc.GossipInterval = cfg.ProbeInterval / 5
	}
	// memberlist lets a suspicion that too few peers confirm run up to
	// six times its base timeout; in the small clusters driftless runs
	// (three nodes: one peer can confirm) that is ~20 s before a dead
	// node's Service endpoints go. Twice the base keeps Lifeguard's
	// protection against one slow prober and halves the wait; a node's
	// replicas still move only after --node-grace.
	mc.SuspicionMaxTimeoutMult = 2
	// Messages are small and the network is a LAN: compressing each one
	// cost more CPU than it saved (receivers read both forms).
	mc.EnableCompression = false
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numMembers, RetransmitMult: 3}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	c.ml = ml
	c.started.Store(ml)
	ctx, c.cancel = context.WithCancel(ctx)
	go c.sendReports(ctx)
	go c.announcer(ctx)
	if len(cfg.Join) > 0 {
		// One join now, so that a duplicate name is found before this
		// agent touches anything; a seed that is down is not fatal.
		if n, err := ml.Join(cfg.Join); err == nil && n > 0 {
			c.log.Info("joined cluster", "via", n, "members", ml.NumMembers())
		}
		select {
		case err := <-c.fatal:
			c.cancel()
			// No Leave: it would announce this name as gone, and the name
			// belongs to the other agent.
			_ = ml.Shutdown()
			return nil, err
		default:
		}
		go c.joinLoop(ctx)
	}
	return c, nil
}

// Fatal delivers an error after which this agent must stop: another live
// agent uses its node name (ErrNameInUse). Call Shutdown, not Leave.
func (c *Cluster) Fatal() <-chan error { return c.fatal }

func encodeMeta(m NodeMeta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, over gossip's %d-byte limit: use fewer or shorter labels", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// joinLoop joins the seeds, retrying with back-off until one answers, and
// again whenever this node finds itself alone.
func (c *Cluster) joinLoop(ctx context.Context) {
	// 200 ms doubling to 6.4 s. It grows while this node has company
	// too, so a node left alone tries again within 6.4 s.
	retry := backoff.Backoff{Base: 200 * time.Millisecond, Max: 6400 * time.Millisecond}
	failures := 0
	for {
		failed := false
		var err error
		if c.ml.NumMembers() <= 1 {
			var n int
			if n, err = c.ml.Join(c.cfg.Join); err != nil || n == 0 {
				failures++
				failed = true
			} else {
				failures = 0
				c.log.Info("joined cluster", "via", n, "members", c.ml.NumMembers())
				retry.Reset()
			}
		}
		delay := retry.Next()
		if failed {
			if keyMismatch(err) {
				if failures == 1 || failures%30 == 0 {
					c.log.Error("cannot join the cluster: the seeds use a different gossip key (check --gossip-key-file); running committed containers meanwhile",
						"seeds", c.cfg.Join, "attempts", failures, "err", err)
				}
			} else if failures == 5 || failures%30 == 0 {
				// Say it loudly now and then.
				c.log.Warn("cannot join the cluster yet (seeds down, or a different gossip key?); running committed containers meanwhile",
					"seeds", c.cfg.Join, "attempts", failures, "err", err)
			} else {
				c.log.Debug("gossip join failed; retrying", "seeds", c.cfg.Join, "err", err, "in", delay)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// keyMismatch tells a seed that answered but could not be understood
// (another gossip key, or encryption on one side only) from one that is
// down. memberlist says so only in its error text.
func keyMismatch(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "could decrypt") || strings.Contains(s, "encryption is not configured") ||
		strings.Contains(s, "encryption is configured but remote state is not encrypted")
}

// SetKeys replaces the keyring while gossip runs: every key of keys is
// installed, keys[0] becomes the one that encrypts, and the keys not in
// keys are removed. Rotating a cluster's key is three rounds, each done on
// every node before the next starts: add the new key after the old one
// (all nodes then read both), move it first (all nodes then write with
// it), remove the old one. Safe for concurrent use.
func (c *Cluster) SetKeys(keys [][]byte) error {
	kr := c.kr
	if kr == nil {
		return errors.New("gossip runs without encryption (--insecure-gossip): no keys to set")
	}
	if len(keys) == 0 {
		return errors.New("gossip keys: none given")
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("install gossip key %s: %w", KeyID(k), err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("use gossip key %s: %w", KeyID(keys[0]), err)
	}
	keep := map[string]bool{}
	for _, k := range keys {
		keep[string(k)] = true
	}
	// Copy first: the keyring's slice is rewritten by RemoveKey.
	var drop [][]byte
	for _, k := range kr.GetKeys() {
		if !keep[string(k)] {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	for _, k := range drop {
		if err := kr.RemoveKey(k); err != nil {
			return fmt.Errorf("remove gossip key %s: %w", KeyID(k), err)
		}
	}
	return nil
}

// KeyIDs lists the installed keys by KeyID, the primary first.
func (c *Cluster) KeyIDs() []string {
	kr := c.kr
	if kr == nil {
		return nil
	}
	var out []string
	for _, k := range kr.GetKeys() {
		out = append(out, KeyID(k))
	}
	return out
}

// LocalAddr is the address gossip listens on.
func (c *Cluster) LocalAddr() string {
	n := c.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members returns every live node, this one included, sorted by name.
// A node gossip declared dead, or that left, is not listed.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// noteMember copies n into the membership. Called from memberlist's
// event callbacks only, where reading n is safe.
// noteMember records n; it reports whether only the commits n
// announces changed (nothing else about it).
func (c *Cluster) noteMember(n *memberlist.Node, alive bool) (headsOnly bool) {
	m := Member{Name: n.Name, Addr: n.Address(), Alive: alive}
	_ = json.Unmarshal(n.Meta, &m.Meta)
	c.mu.Lock()
	if old, ok := c.members[n.Name]; ok && alive {
		a, b := old.Meta, m.Meta
		a.StatusHead, a.DesiredHead, b.StatusHead, b.DesiredHead = "", "", "", ""
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		headsOnly = old.Addr == m.Addr && bytes.Equal(ja, jb)
	}
	if alive {
		c.members[n.Name] = m
		c.addrs[n.Name] = memberlist.Node{Name: n.Name, Addr: append(net.IP(nil), n.Addr...), Port: n.Port}
	} else {
		delete(c.members, n.Name)
		delete(c.addrs, n.Name)
	}
	c.mu.Unlock()
	return headsOnly
}

// Changes signals (coalesced) that membership changed.
func (c *Cluster) Changes() <-chan struct{} { return c.changes }

// ReportsChanged signals (coalesced) that another node's report arrived.
func (c *Cluster) ReportsChanged() <-chan struct{} { return c.reportsIn }

// ReportTo sends this node's report to these nodes only (the leader,
// which decides from reports, and its successor); none: to every alive
// member. A node newly named gets the newest report at once.
func (c *Cluster) ReportTo(names ...string) {
	var to map[string]bool
	if len(names) > 0 {
		to = map[string]bool{}
		for _, n := range names {
			if n != "" && n != c.cfg.NodeName {
				to[n] = true
			}
		}
	}
	c.mu.Lock()
	added := false
	for n := range to {
		if c.reportTo == nil || !c.reportTo[n] {
			added = true
		}
	}
	if to == nil && c.reportTo != nil {
		added = true
	}
	c.reportTo = to
	c.mu.Unlock()
	if added {
		c.askResend()
	}
}

// Announced signals (coalesced) that a node announced other commits and
// nothing else about it changed.
func (c *Cluster) Announced() <-chan struct{} { return c.announced }

// UpdateMeta publishes new metadata (the heads announced so far are
// kept).
func (c *Cluster) UpdateMeta(m NodeMeta) error {
	c.mu.Lock()
	m.StatusHead, m.DesiredHead = c.own.StatusHead, c.own.DesiredHead
	c.mu.Unlock()
	bare := m
	bare.StatusHead, bare.DesiredHead = "", ""
	if _, err := encodeMeta(bare); err != nil {
		return err
	}
	c.setOwn(m)
	return nil
}

// AnnounceStatus announces that this node holds status commit head (and
// serves it to its peers). It never blocks: the announcer publishes the
// newest metadata in the background.
func (c *Cluster) AnnounceStatus(head string) {
	c.mu.Lock()
	m := c.own
	c.mu.Unlock()
	if m.StatusHead != head {
		m.StatusHead = head
		c.setOwn(m)
	}
}

// AnnounceDesired announces that this node holds desired commit head.
// It never blocks.
func (c *Cluster) AnnounceDesired(head string) {
	c.mu.Lock()
	m := c.own
	c.mu.Unlock()
	if m.DesiredHead != head {
		m.DesiredHead = head
		c.setOwn(m)
	}
}

// setOwn encodes m as this node's metadata, without its heads when they
// do not fit, and asks the announcer to publish it.
func (c *Cluster) setOwn(m NodeMeta) {
	b, err := encodeMeta(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		bare := m
		bare.StatusHead, bare.DesiredHead = "", ""
		if b, err = encodeMeta(bare); err != nil {
			return // checked by the caller
		}
		if !c.tooBig {
			c.tooBig = true
			c.log.Warn("node metadata has no room for the commits this node holds: peers fetch from the leader only; use fewer or shorter labels", "err", err)
		}
	}
	c.own = m
	if bytes.Equal(b, c.meta) {
		return
	}
	c.meta = b
	select {
	case c.announce <- struct{}{}:
	default:
	}
}

// announcer publishes this node's metadata each time it changes; changes
// made while one is sent coalesce into one more.
func (c *Cluster) announcer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.announce:
		}
		// memberlist gossips the new metadata (an alive message of a
		// higher incarnation); it waits for the broadcast to go out.
		if err := c.ml.UpdateNode(5 * time.Second); err != nil {
			c.log.Debug("publish node metadata", "err", err)
		}
	}
}

// Candidate is the node that should lead: the lowest name among alive
// members. Every node computes the same answer from the same view; Git's
// compare-and-swap settles the moments when views differ.
func Candidate(members []Member) string {
	best := ""
	for _, m := range members {
		if m.Alive && (best == "" || m.Name < best) {
			best = m.Name
		}
	}
	return best
}

// HasMajority reports whether alive nodes are a majority of the known
// ones (known: the nodes on the status branch, at least 1).
func HasMajority(alive, known int) bool {
	if known < 1 {
		known = 1
	}
	return alive > known/2
}

// SetReport publishes this node's observed state: sent reliably to every
// alive member (or those ReportTo names) by a goroutine of its own (a
// peer that does not answer delays nobody), again to each node that
// joins, and exchanged in push/pull syncs. It never blocks.
func (c *Cluster) SetReport(replicas map[string]manifest.ReplicaStatus, reached string) {
	c.mu.Lock()
	c.seq++
	r := Report{Node: c.cfg.NodeName, Incarnation: c.cfg.Meta.Started, Seq: c.seq, Replicas: replicas, Reached: reached}
	c.reports[r.Node] = r
	c.mu.Unlock()
	c.askResend()
}

func (c *Cluster) askResend() {
	select {
	case c.resend <- struct{}{}:
	default:
	}
}

// sendReports sends the newest own report to every alive member each
// time it is asked to; asks made while it sends coalesce into one more
// round with the then newest report.
func (c *Cluster) sendReports(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.resend:
		}
		c.mu.Lock()
		r, ok := c.reports[c.cfg.NodeName]
		peers := make([]memberlist.Node, 0, len(c.addrs))
		for name, n := range c.addrs {
			if name != c.cfg.NodeName && (c.reportTo == nil || c.reportTo[name]) {
				peers = append(peers, n)
			}
		}
		c.mu.Unlock()
		if !ok {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			continue
		}
		msg := append([]byte{'r'}, b...)
		for i := range peers {
			if ctx.Err() != nil {
				return
			}
			// A TCP stream bounded by memberlist's TCPTimeout.
			if err := c.ml.SendReliable(&peers[i], msg); err != nil {
				c.log.Debug("send report", "to", peers[i].Name, "err", err)
			}
		}
	}
}

// Reports returns the newest report of every node.
func (c *Cluster) Reports() map[string]Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Report, len(c.reports))
	for k, v := range c.reports {
		out[k] = v
	}
	return out
}

func (c *Cluster) mergeReport(r Report) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.reports[r.Node]; ok && !newerReport(r, old) {
		return false
	}
	if r.Node == c.cfg.NodeName {
		return false
	}
	c.reports[r.Node] = r
	return true
}

// newerReport reports whether r supersedes old: a later incarnation, or
// a later sequence of the same one.
func newerReport(r, old Report) bool {
	if r.Incarnation != old.Incarnation {
		return r.Incarnation > old.Incarnation
	}
	return r.Seq > old.Seq
}

// Hint broadcasts a hint to every node (each relays it once).
func (c *Cluster) Hint(h Hint) {
	if h.ID == "" {
		h.ID = fmt.Sprintf("%s-%d", c.cfg.NodeName, time.Now().UnixNano())
	}
	c.mu.Lock()
	c.seen[h.ID] = time.Now()
	c.mu.Unlock()
	c.queueHint(h)
}

// numMembers is the member count for the broadcast queue (1 while
// memberlist is still starting).
func (c *Cluster) numMembers() int {
	if ml := c.started.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

func (c *Cluster) queueHint(h Hint) {
	b, _ := json.Marshal(h)
	c.queue.QueueBroadcast(broadcast(append([]byte{'h'}, b...)))
}

// Hints delivers hints from other nodes.
func (c *Cluster) Hints() <-chan Hint { return c.hints }

// Leave announces departure and waits up to timeout. Safe twice.
func (c *Cluster) Leave(timeout time.Duration) error {
	return c.ml.Leave(timeout)
}

// Shutdown stops gossip. Safe to call twice.
func (c *Cluster) Shutdown() error {
	var err error
	c.once.Do(func() {
		c.cancel()
		err = c.ml.Shutdown()
	})
	return err
}

type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// delegate implements memberlist.Delegate. Never blocks.
type delegate Cluster

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.meta...)
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	c := (*Cluster)(d)
	payload := append([]byte(nil), b[1:]...)
	switch b[0] {
	case 'h':
		var h Hint
		if json.Unmarshal(payload, &h) != nil {
			return
		}
		c.mu.Lock()
		_, dup := c.seen[h.ID]
		if !dup {
			c.seen[h.ID] = time.Now()
			for id, t := range c.seen {
				if time.Since(t) > 10*time.Minute {
					delete(c.seen, id)
				}
			}
		}
		c.mu.Unlock()
		if dup {
			return
		}
		c.queueHint(h) // relay once, so every node gets it
		select {
		case c.hints <- h:
		default:
		}
	case 'r':
		var r Report
		if json.Unmarshal(payload, &r) == nil && c.mergeReport(r) {
			c.signalReports()
		}
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.reports)
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var rs map[string]Report
	if json.Unmarshal(buf, &rs) != nil {
		return
	}
	c := (*Cluster)(d)
	changed := false
	for _, r := range rs {
		if c.mergeReport(r) {
			changed = true
		}
	}
	if changed {
		c.signalReports()
	}
}

func (c *Cluster) signalReports() {
	select {
	case c.reportsIn <- struct{}{}:
	default:
	}
}

func (c *Cluster) signal() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// events implements memberlist.EventDelegate.
type events Cluster

func (e *events) NotifyJoin(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.noteMember(n, true)
	if n.Name != c.cfg.NodeName {
		// A node that (re)joins may have lost every report: a leader
		// that restarted must not wait for this node's next change.
		c.askResend()
	}
	c.signal()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.noteMember(n, false)
	c.signal()
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	c := (*Cluster)(e)
	if c.noteMember(n, true) {
		select {
		case c.announced <- struct{}{}:
		default:
		}
		return
	}
	c.signal()
}

// conflicts implements memberlist.ConflictDelegate: two live agents gossip
// under one name. The one that started later is the duplicate; it is told
// through Fatal. Never blocks.
type conflicts Cluster

func (cf *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	c := (*Cluster)(cf)
	if existing.Name != c.cfg.NodeName {
		c.log.Error("two agents gossip under one node name", "node", existing.Name,
			"addr", existing.Address(), "other", other.Address())
		return
	}
	var theirs NodeMeta
	_ = json.Unmarshal(other.Meta, &theirs)
	mine := c.cfg.Meta.Started
	later := theirs.Started != 0 && (mine > theirs.Started || mine == theirs.Started && existing.Address() > other.Address())
	if !later {
		c.log.Error("another agent started with this node's name; it is refused", "node", existing.Name, "other", other.Address())
		return
	}
	err := fmt.Errorf("%w: %q is already used by a live agent at %s (started %s); give this agent another --node, or if that agent is gone, start again once gossip has declared it dead",
		ErrNameInUse, existing.Name, other.Address(), time.Unix(0, theirs.Started).UTC().Format(time.RFC3339))
	select {
	case c.fatal <- err:
	default:
	}
}

// slogWriter sends memberlist's log lines to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), "subsystem", "gossip")
	return len(p), nil
}

var _ io.Writer = slogWriter{}
