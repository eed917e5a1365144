package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// The verbs that go to a node's peer listener, from the CLI on another
// machine (the test's namespace) to a host of the LAN: reconcile now, the
// node's containers against its desired replicas, a replica's logs; a
// wrong token is refused.
func TestPeerVerbs(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo hello from the peer; "+trapSleep))
	e.work.WriteFile("ghost.yaml", strings.Replace(deployment("ghost", 1, trapSleep), "image: busybox:latest\n          imagePullPolicy: IfNotPresent", "image: nosuch.invalid/ghost:1\n          imagePullPolicy: Never", 1))
	e.work.Commit("web and a replica whose image is nowhere")
	e.work.Push()
	key := writeKey(t, "0123456789abcdef0123456789abcdef")
	_, hosts := startHosts(t, e, 1, "--gossip-key-file", key)
	h := hosts[0]
	waitFor(t, "web running on the host", 90*time.Second, func() (bool, string) {
		return running(listTasksIn(t, h.client, ns, "web")) == 1, ""
	})
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("driftless %v: exit %d, want %d\n%s", args, code, wantCode, out)
		}
		return string(out)
	}
	peerArgs := []string{"--repo", e.url, "--gossip-key-file", key}

	out := cli(0, append([]string{"reconcile"}, peerArgs...)...)
	if !strings.Contains(out, h.Name) || !strings.Contains(out, "reconciled") {
		t.Fatalf("reconcile:\n%s", out)
	}
	out = cli(3, append([]string{"diff"}, peerArgs...)...)
	if !strings.Contains(out, "missing") || !strings.Contains(out, "default/Deployment/ghost") || strings.Contains(out, "Deployment/web") {
		t.Fatalf("diff:\n%s", out)
	}
	waitFor(t, "the log through the peer listener", 30*time.Second, func() (bool, string) {
		out, _ := exec.Command(e.bin, append([]string{"logs", "deploy/web", "--node", h.Name}, peerArgs...)...).CombinedOutput()
		return strings.Contains(string(out), "hello from the peer"), string(out)
	})
	wrong := writeKey(t, "fedcba9876543210fedcba9876543210")
	out = cli(1, "reconcile", "--repo", e.url, "--gossip-key-file", wrong)
	if !strings.Contains(out, "401") {
		t.Fatalf("a wrong key: %s", out)
	}
}

// A dashboard shows the log of a replica on another node: the agent
// fetches it from that node's peer listener with a call signed by its
// node key, which that node checks against the key published on the
// status branch; a forged signature is refused.
func TestDashboardLogsFromAnotherNode(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, "echo hello from the other node; "+trapSleep))
	e.work.Commit("web")
	e.work.Push()
	_, hosts := startHosts(t, e, 2)
	var on, other *appHost
	waitFor(t, "web running on a host", 120*time.Second, func() (bool, string) {
		for i, h := range hosts {
			if running(listTasksIn(t, h.client, ns, "web")) == 1 {
				on, other = h, hosts[1-i]
				return true, ""
			}
		}
		return false, ""
	})
	url := "http://" + other.opts.api + "/api/v1/logs?workload=default/Deployment/web&replica=0&anyNode=1"
	// Without anyNode, the node's own log API: a 404 naming the node.
	if resp, err := http.Get("http://" + other.opts.api + "/api/v1/logs?workload=default/Deployment/web&replica=0"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "runs on node "+on.Name) {
			t.Fatalf("the node's own log API for a replica elsewhere: %d %s", resp.StatusCode, b)
		}
	}
	waitFor(t, "the other node's dashboard serving web's log", 60*time.Second, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), "hello from the other node"), fmt.Sprintf("%d %s", resp.StatusCode, b)
	})

	// A call claiming to come from the other node, not signed by its key.
	req, _ := http.NewRequest("GET", "http://"+on.IP.String()+":7481/peer/v1/logs?workload=default/Deployment/web&replica=0", nil)
	req.Header.Set("Authorization", fmt.Sprintf("Driftless-Node %s %d %s %s", other.Name, time.Now().Unix(), "00ff00ff", "AAAAC3NzaC1lZDI1NTE5AAAAQAAA"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), "hello") {
		t.Fatalf("forged signature: %d %s", resp.StatusCode, b)
	}
	// The repositories go to nodes only, even on a listener that does not
	// authenticate the CLI (insecure gossip here).
	resp, err = http.Get("http://" + on.IP.String() + ":7481/peer/v1/git/status/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsigned fetch of the status clone: %d", resp.StatusCode)
	}
}

// Followers fetch new status and desired commits from the leader's peer
// listener, not from the Git host: per desired change, the host serves
// the leader, and the followers together at most 2 fetches.
func TestPeersShareGitObjects(t *testing.T) {
	l := hostLoadPerChange(t, 10, true)
	t.Logf("Git host requests for one desired change: leader %d, followers %d (10 nodes); peers served %v; %d while idle",
		l.leader, l.followers, l.served, l.idleServed)
	if l.followers > 2 {
		t.Fatalf("the followers made the Git host serve %d requests for one change, want at most 2 (peers serve them)", l.followers)
	}
	// Followers learn of new commits from what peers announce: while
	// nothing changes they ask nobody (they used to poll the leader).
	if l.idleServed > 0 {
		t.Fatalf("peers served %d fetches while nothing changed, want 0", l.idleServed)
	}
	total := 0
	for _, n := range l.served {
		total += n
	}
	if total < 9 {
		t.Fatalf("peers served %d fetches for the change, want at least one per follower: %v", total, l.served)
	}
}

// BenchmarkGitHostLoad reports the Git host's requests (fetches and
// pushes) for one desired change on three hosts, with followers fetching
// from the leader's peer listener and, side by side, without.
func BenchmarkGitHostLoad(b *testing.B) {
	for i := 0; i < b.N; i++ {
		l := hostLoadPerChange(b, 3, true)
		b.ReportMetric(float64(l.leader), "leader-reqs")
		b.ReportMetric(float64(l.followers), "follower-reqs")
		l = hostLoadPerChange(b, 3, false)
		b.ReportMetric(float64(l.leader), "leader-reqs-nopeer")
		b.ReportMetric(float64(l.followers), "follower-reqs-nopeer")
	}
}

// hostLoad is what one desired change cost: the Git host's requests by
// the leader and by the followers, and the fetches each node's peer
// listener served; idleServed is what peers served in a quiet while
// before it.
type hostLoad struct {
	leader, followers int
	served            map[string]int
	idleServed        int
}

// hostLoadPerChange runs a DaemonSet on n hosts, pushes one template
// change and counts the Git host's requests by the leader and by the
// followers from the push until every node ran it.
func hostLoadPerChange(tb testing.TB, n int, peerFetch bool) (l hostLoad) {
	e := newEnv(tb)
	e.work.WriteFile("logger.yaml", loggerDaemonSet)
	e.work.Commit("logger")
	e.work.Push()
	extra := []string{}
	if !peerFetch {
		extra = append(extra, "--peer-fetch=false")
	}
	_, hosts := startHosts(tb, e, n, extra...)
	hostDaemon := hosts[0].git
	reachedAll := func(commit string) func() (bool, string) {
		return func() (bool, string) {
			st := branchState(e.url)
			k := 0
			for _, h := range hosts {
				if st.Nodes[h.Name].DesiredCommitReached == commit {
					k++
				}
			}
			return k == len(hosts), fmt.Sprintf("%d of %d nodes reached %s", k, len(hosts), commit)
		}
	}
	first := testenv.Git(tb, e.work.Dir, "rev-parse", "HEAD")
	waitFor(tb, "every node ran the first commit", 180*time.Second, reachedAll(first))
	st := branchState(e.url)
	leaderIP := ""
	for _, h := range hosts {
		if h.Name == st.Cluster.Leader {
			leaderIP = h.IP.String()
		}
	}
	served := func() map[string]int {
		out := map[string]int{}
		for _, h := range hosts {
			for _, repo := range []string{"desired", "status"} {
				v, _, _ := metricValue(h.opts.api, "driftless_peer_git_served_total", map[string]string{"repo": repo})
				out[h.Name] += int(v)
			}
		}
		return out
	}
	time.Sleep(3 * time.Second) // followers' reads settle
	idle := served()
	time.Sleep(3 * time.Second)
	for k, v := range served() {
		l.idleServed += v - idle[k]
	}
	servedBefore := served()
	before := hostDaemon.Requests()
	e.work.WriteFile("logger.yaml", strings.Replace(loggerDaemonSet, "terminationGracePeriodSeconds: 1", "terminationGracePeriodSeconds: 2", 1))
	change := e.work.Commit("logger: a new template")
	e.work.Push()
	waitFor(tb, "every node ran the change", 180*time.Second, reachedAll(change))
	after := hostDaemon.Requests()
	l.leader = after[leaderIP] - before[leaderIP]
	for ip, k := range after {
		if ip != leaderIP {
			l.followers += k - before[ip]
		}
	}
	l.served = map[string]int{}
	for k, v := range served() {
		if d := v - servedBefore[k]; d > 0 {
			l.served[k] = d
		}
	}
	if l.followers > 0 {
		// Why a follower went to the Git host.
		for _, h := range hosts {
			for _, line := range strings.Split(h.agent.logs.String(), "\n") {
				if strings.Contains(line, "not read from a peer") || strings.Contains(line, "not fetched from a peer") {
					tb.Logf("%s: %s", h.Name, line)
				}
			}
		}
	}
	return l
}
