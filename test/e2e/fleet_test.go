package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// BenchmarkFleet is the fleet simulation: n agents on one machine (one
// containerd namespace each, images imported once, gossip on loopback, a
// peer listener each) follow a repository served by git daemon; a
// desired change every 5 s for a minute. It reports the Git host's
// requests per change, the time from a push until every node reached it
// (p50, p99), and the agents' resident memory and CPU time, for each
// size in FLEET_SIZES (default 1,10,50), with followers fetching from the
// leader's peer listener and, side by side, without (--peer-fetch=false).
func BenchmarkFleet(b *testing.B) {
	sizes := os.Getenv("FLEET_SIZES")
	if sizes == "" {
		sizes = "1,10,50"
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			b.Fatalf("FLEET_SIZES: %q", s)
		}
		for _, peer := range []bool{true, false} {
			if n == 1 && !peer {
				continue
			}
			b.Run(fmt.Sprintf("agents=%d/peer-fetch=%v", n, peer), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r := fleetRun(b, n, peer, 12, 5*time.Second)
					if r.stuck != "" {
						b.Logf("%d agents, peer fetch %v: not every node reached %s in time", n, peer, r.stuck)
						b.ReportMetric(1, "stuck")
						continue
					}
					b.ReportMetric(r.reqsPerChange, "host-reqs/change")
					b.ReportMetric(r.fetchesPerChange, "host-fetches/change")
					b.ReportMetric(r.busiestServed, "busiest-peer-share")
					b.ReportMetric(float64(r.p50.Milliseconds()), "reach-p50-ms")
					b.ReportMetric(float64(r.p99.Milliseconds()), "reach-p99-ms")
					b.ReportMetric(r.rssMiB, "agents-RSS-MiB")
					b.ReportMetric(r.cpuSeconds, "agents-CPU-s")
				}
			})
		}
	}
}

type fleetResult struct {
	// busiestServed is the share of the peer fetches (over the whole
	// run) that the busiest peer served.
	busiestServed float64
	// stuck names the commit not every node reached in time ("": all
	// did).
	stuck         string
	reqsPerChange float64
	// fetchesPerChange counts fetches alone; the rest are the leader's
	// status pushes, whose number follows how the nodes' reports of a
	// change spread in time.
	fetchesPerChange float64
	p50, p99         time.Duration
	rssMiB           float64
	cpuSeconds       float64
}

func fleetRun(tb testing.TB, n int, peerFetch bool, changes int, every time.Duration) fleetResult {
	e := newEnv(tb)
	e.work.WriteFile("logger.yaml", loggerDaemonSet)
	e.work.WriteFile("settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {round: \"0\"}\n")
	e.work.Commit("a fleet")
	e.work.Push()
	d := testenv.GitDaemon(tb, filepath.Dir(e.repoDir))
	repo := d.URL + "/" + filepath.Base(e.repoDir)
	key := writeKey(tb, "0123456789abcdef0123456789abcdef")
	names := make([]string, n)
	gossip := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%02d", i+1)
		gossip[i] = freeGossipAddr(tb)
	}
	var agents []*agentProc
	for i, name := range names {
		var seeds []string
		for j := range names {
			if j != i && len(seeds) < 5 {
				seeds = append(seeds, gossip[j])
			}
		}
		o := e.opts(tb, name)
		o.repo = repo
		o.namespace = ns + "-" + name
		o.poll = "1s"
		o.extra = []string{"--gossip", gossip[i], "--gossip-key-file", key, "--bootstrap-expect", fmt.Sprint(n),
			"--node-grace", "10s", "--status-poll", "1s", "--peer-listen", freePort(tb)}
		if len(seeds) > 0 {
			o.extra = append(o.extra, "--join", strings.Join(seeds, ","))
		}
		if !peerFetch {
			o.extra = append(o.extra, "--peer-fetch=false")
		}
		agents = append(agents, startAgent(tb, o))
	}
	reached := func(commit string) bool {
		st := branchState(e.url)
		for _, name := range names {
			if st.Nodes[name].DesiredCommitReached != commit {
				return false
			}
		}
		return true
	}
	first := testenv.Git(tb, e.work.Dir, "rev-parse", "HEAD")
	// A fleet that cannot converge on this machine is a result, not an
	// error: the benchmark reports it.
	if !eventuallyTrue(5*time.Minute, func() bool { return reached(first) }) {
		return fleetResult{stuck: "the first commit"}
	}

	total := func(m map[string]int) int {
		s := 0
		for _, v := range m {
			s += v
		}
		return s
	}
	before, fetchesBefore := total(d.Requests()), total(d.Fetches())
	cpuBefore := agentsCPU(agents)
	var reach []time.Duration
	for c := 1; c <= changes; c++ {
		start := time.Now()
		e.work.WriteFile("settings.yaml", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {round: \"%d\"}\n", c))
		commit := e.work.Commit(fmt.Sprintf("round %d", c))
		e.work.Push()
		if !eventuallyTrue(2*time.Minute, func() bool { return reached(commit) }) {
			return fleetResult{stuck: fmt.Sprintf("round %d", c)}
		}
		reach = append(reach, time.Since(start))
		if rest := every - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
	r := fleetResult{reqsPerChange: float64(total(d.Requests())-before) / float64(changes),
		fetchesPerChange: float64(total(d.Fetches())-fetchesBefore) / float64(changes)}
	sort.Slice(reach, func(i, j int) bool { return reach[i] < reach[j] })
	r.p50 = reach[len(reach)/2]
	r.p99 = reach[min(len(reach)-1, len(reach)*99/100)]
	r.cpuSeconds = agentsCPU(agents) - cpuBefore
	// Which peers served the followers.
	served, top := 0, 0
	for _, a := range agents {
		k := 0
		for _, repo := range []string{"desired", "status"} {
			v, _, _ := metricValue(a.api, "driftless_peer_git_served_total", map[string]string{"repo": repo})
			k += int(v)
		}
		served += k
		top = max(top, k)
	}
	if served > 0 {
		r.busiestServed = float64(top) / float64(served)
	}
	// Why followers went to the Git host, if they did.
	why := map[string]int{}
	sample := map[string]string{}
	for _, a := range agents {
		for _, line := range strings.Split(a.logs.String(), "\n") {
			for _, m := range []string{"not read from a peer", "not fetched from a peer", "status branch unavailable"} {
				if strings.Contains(line, m) {
					why[m]++
					sample[m] = line
				}
			}
		}
	}
	for m, k := range why {
		tb.Logf("%d agents: %d× %q, e.g. %s", n, k, m, sample[m])
	}
	for _, a := range agents {
		r.rssMiB += float64(procRSS(a.cmd.Process.Pid)) / (1 << 20)
	}
	return r
}

// agentsCPU is the CPU time the agents used so far, in seconds.
func agentsCPU(agents []*agentProc) float64 {
	s := 0.0
	for _, a := range agents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		// utime and stime are the 12th and 13th fields after the name.
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			s += (u + st) / 100 // clock ticks (USER_HZ)
		}
	}
	return s
}

// procRSS is a process's resident memory in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// eventuallyTrue polls f every 200 ms until it holds or d has passed.
func eventuallyTrue(d time.Duration, f func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
