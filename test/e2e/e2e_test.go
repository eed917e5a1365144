package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"

	"driftless.dev/driftless/internal/testenv"
)

// ns is unique per test process (see testenv.Namespace).
var ns = testenv.Namespace("driftless")

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// The agents of these tests share one CNI network of this process's own
// (--cni-conf-dir), so that their replicas' addresses and iptables rules
// are removed when the tests end.
var (
	cniOnce    sync.Once
	cniNet     testenv.CNINet
	cniConfDir string
	cniDir     string
)

func testCNIConfDir(t testing.TB) string {
	t.Helper()
	testenv.RequireCNI(t)
	cniOnce.Do(func() {
		var err error
		if cniDir, err = os.MkdirTemp("", "dl-e2e-cni-"); err != nil {
			return
		}
		cniNet = testenv.ProcessCNINet(cniDir)
		testenv.CleanupCNINet(cniNet.Name, cniNet.Bridge)
		cniConfDir = filepath.Join(cniDir, "net.d")
		if err := cniNet.WriteConfDir(cniConfDir); err != nil {
			cniConfDir = ""
		}
	})
	if cniConfDir == "" {
		t.Fatal("cannot write the tests' CNI configuration")
	}
	return cniConfDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if cniDir != "" {
		testenv.CleanupCNINet(cniNet.Name, cniNet.Bridge)
		os.RemoveAll(cniDir)
	}
	os.Exit(code)
}

// buildBinary compiles cmd/driftless once per test process, with the race
// detector: the agent is concurrent (HTTP API, gossip callbacks, the loop)
// and these tests are its real workout.
// Benchmarks get a binary without the race detector, which would skew
// their timings.
func buildBinary(t testing.TB) string {
	t.Helper()
	_, bench := t.(*testing.B)
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "dl-e2e-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "driftless")
		args := []string{"build", "-o", binPath, "driftless.dev/driftless/cmd/driftless"}
		if !bench {
			args = append([]string{"build", "-race"}, args[1:]...)
		}
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		binErr = cmd.Run()
	})
	if binErr != nil {
		t.Fatalf("build driftless: %v", binErr)
	}
	return binPath
}

// env is what every end-to-end test starts from: the binary, a private
// containerd with a client, the busybox archive dir, a bare repository
// and a person's clone of it.
type env struct {
	bin    string
	cd     *testenv.Containerd
	client *containerd.Client
	images string
	url    string
	// repoDir is the bare repository behind url (file://).
	repoDir string
	work    *testenv.WorkClone
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{bin: buildBinary(t), cd: testenv.StartContainerd(t)}
	e.images = filepath.Dir(testenv.BusyboxArchive(t))
	e.repoDir, e.url = testenv.NewBareRepo(t)
	e.work = testenv.NewWorkClone(t, e.url)
	e.client = e.cd.Client(t)
	return e
}

// opts returns agent options for one node of this environment.
func (e *env) opts(t testing.TB, node string) agentOpts {
	dataDir := t.TempDir()
	// Runs before the temp dir is removed: tmpfs volumes and network
	// namespaces stay mounted after the agent is killed, as they would on
	// a real node.
	t.Cleanup(func() { testenv.UnmountBelow(dataDir) })
	return agentOpts{bin: e.bin, node: node, repo: e.url, dataDir: dataDir, sock: e.cd.Address, images: e.images, api: freePort(t)}
}

func freePort(t testing.TB) string { return testenv.FreePort(t) }

type agentProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	api  string
	logs *syncBuffer
}

type agentOpts struct {
	bin, node, repo, dataDir, sock, images, api string
	poll                                        string
	namespace                                   string
	extra                                       []string
	env                                         []string // added to the agent's environment
	// netns, when set, runs the agent inside that host's network
	// namespace (testenv.LAN) with its own bridge network, Service
	// rules and DNS; otherwise it shares the test's namespace and the
	// test CNI network, with Services and DNS off (no agent may program
	// the rules of a namespace another test's agent programs).
	netns string
}

func (o agentOpts) pollOr(d string) string {
	if o.poll != "" {
		return o.poll
	}
	return d
}

// startAgentArgs runs the binary with exactly these arguments.
func startAgentArgs(t testing.TB, node, bin string, args ...string) *agentProc {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, cmd: cmd, logs: &logs}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("agent %s log:\n%s", node, tail(logs.String(), 80))
		}
	})
	return p
}

func startAgent(t testing.TB, o agentOpts) *agentProc {
	t.Helper()
	var logs syncBuffer
	namespace := o.namespace
	if namespace == "" {
		namespace = ns
	}
	args := []string{"agent", "--node", o.node, "--repo", o.repo,
		"--data-dir", o.dataDir, "--containerd-address", o.sock, "--namespace", namespace,
		"--images-dir", o.images, "--listen", o.api, "--poll", o.pollOr("300ms"),
		"--status-interval", "200ms", "--resync", "1s", "--log-level", "debug"}
	if o.netns == "" {
		if !slices.Contains(o.extra, "--cni-conf-dir") {
			args = append(args, "--cni-conf-dir", testCNIConfDir(t), "--cni-bin-dir", cniNet.BinDir)
		}
		args = append(args, "--service-proxy", "off", "--dns-listen", "off")
		if !slices.Contains(o.extra, "--peer-listen") {
			args = append(args, "--peer-listen", "off") // agents of one host would share NODE_IP:7481
		}
	} else {
		args = append(args, "--cni-bin-dir", cniNet.BinDir)
	}
	cmd := exec.Command(o.bin, append(args, o.extra...)...)
	if o.netns != "" {
		cmd = exec.Command("nsenter", append([]string{"--net=" + o.netns, o.bin}, append(args, o.extra...)...)...)
	}
	if len(o.env) > 0 {
		cmd.Env = append(os.Environ(), o.env...)
	}
	cmd.Stdout = &logs
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, cmd: cmd, api: o.api, logs: &logs}
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(logs.String(), "WARNING: DATA RACE") {
			t.Errorf("agent %s: data race:\n%s", o.node, logs.String()[strings.Index(logs.String(), "WARNING: DATA RACE"):])
		}
		if t.Failed() {
			t.Logf("agent %s log:\n%s", o.node, tail(logs.String(), 80))
		}
	})
	return p
}

func (p *agentProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// term stops the agent with SIGTERM and returns its exit error.
func (p *agentProc) term() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		p.kill()
		return fmt.Errorf("agent did not stop within 15s of SIGTERM")
	}
}

// syncBuffer collects an agent's output; tests read it while the agent
// still writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type snapshot struct {
	DesiredCommit string `json:"desiredCommit"`
	LastRejection *struct {
		Commit string   `json:"commit"`
		Errors []string `json:"errors"`
	} `json:"lastRejection"`
	Replicas []struct {
		Workload struct{ Name string } `json:"workload"`
		Index    int                   `json:"index"`
		Status   struct {
			Phase  string `json:"phase"`
			Reason string `json:"reason"`
			PodIP  string `json:"podIP"`
		} `json:"status"`
	} `json:"replicas"`
}

func (p *agentProc) status() (snapshot, error) {
	var s snapshot
	resp, err := http.Get("http://" + p.api + "/api/v1/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// task is one container of a workload as containerd reports it.
type task struct {
	ID, Status, Cmd string
	PID             uint32
}

func listTasks(t testing.TB, c *containerd.Client, workload string) []task {
	t.Helper()
	return listTasksIn(t, c, ns, workload)
}

func listTasksIn(t testing.TB, c *containerd.Client, namespace, workload string) []task {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	cs, err := c.Containers(ctx, fmt.Sprintf(`labels."driftless.dev/workload"==%s`, workload))
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	var out []task
	for _, ctr := range cs {
		tk := task{ID: ctr.ID(), Status: "none"}
		if spec, err := ctr.Spec(ctx); err == nil && spec.Process != nil {
			tk.Cmd = strings.Join(spec.Process.Args, " ")
		}
		if tsk, err := ctr.Task(ctx, nil); err == nil {
			st, err := tsk.Status(ctx)
			if err == nil {
				tk.Status = string(st.Status)
			}
			tk.PID = tsk.Pid()
		}
		out = append(out, tk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func running(ts []task) int {
	n := 0
	for _, t := range ts {
		if t.Status == "running" {
			n++
		}
	}
	return n
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, what, timeout, cond)
}

func deployment(name string, replicas int, script string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
%[3]s`, name, replicas, busyboxContainer("        ", "main", script))
}

// pod is a Pod of one busybox container running script.
func pod(name, script string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
%s`, name, busyboxContainer("    ", name, script))
}

// busyboxContainer is one list item of containers (or initContainers),
// indented by indent: the test image running script with sh -c.
func busyboxContainer(indent, name, script string) string {
	return fmt.Sprintf("%[1]s- name: %[2]s\n%[1]s  image: busybox:latest\n%[1]s  imagePullPolicy: IfNotPresent\n%[1]s  command: [\"sh\", \"-c\", %[3]q]\n", indent, name, script)
}

func TestSingleNodeLifecycle(t *testing.T) {
	e := newEnv(t)
	bin, url, work, client := e.bin, e.url, e.work, e.client
	ctx := namespaces.WithNamespace(context.Background(), ns)

	// A container in the agent's namespace that is not driftless's, with a
	// clashing name: it must survive everything below.
	img, err := client.GetImage(ctx, "docker.io/library/busybox:latest")
	if err != nil {
		if _, ierr := importArchive(ctx, client, testenv.BusyboxArchive(t)); ierr != nil {
			t.Fatalf("import: %v", ierr)
		}
		img, err = client.GetImage(ctx, "docker.io/library/busybox:latest")
		if err != nil {
			t.Fatal(err)
		}
	}
	foreign, err := client.NewContainer(ctx, "web-0-main-foreign",
		containerd.WithNewSnapshot("web-0-main-foreign-snap", img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "1000")))
	if err != nil {
		t.Fatalf("foreign container: %v", err)
	}
	t.Cleanup(func() { _ = foreign.Delete(context.Background(), containerd.WithSnapshotCleanup) })

	work.WriteFile("apps/web.yaml", deployment("web", 2, "echo started; sleep 1000"))
	first := work.Commit("web: 2 replicas")
	work.Push()

	opts := e.opts(t, "node-1")
	ag := startAgent(t, opts)

	waitFor(t, "2 running replicas", 60*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "web")
		return running(ts) == 2 && len(ts) == 2, fmt.Sprintf("%+v", ts)
	})
	waitFor(t, "status to name the first commit", 10*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.DesiredCommit == first, fmt.Sprintf("%+v %v", s, err)
	})

	// Scale to 3: the two running containers stay, one is added.
	before := listTasks(t, client, "web")
	work.WriteFile("apps/web.yaml", deployment("web", 3, "echo started; sleep 1000"))
	work.Commit("web: 3 replicas")
	work.Push()
	waitFor(t, "3 running replicas", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "web")
		return running(ts) == 3 && len(ts) == 3, fmt.Sprintf("%+v", ts)
	})
	assertUnchanged(t, before, listTasks(t, client, "web"))

	// Change the command: every container is replaced.
	before = listTasks(t, client, "web")
	work.WriteFile("apps/web.yaml", deployment("web", 3, "echo v2; sleep 1000"))
	work.Commit("web: v2")
	work.Push()
	waitFor(t, "3 replaced replicas", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "web")
		if len(ts) != 3 || running(ts) != 3 {
			return false, fmt.Sprintf("%+v", ts)
		}
		for _, x := range ts {
			if !strings.Contains(x.Cmd, "echo v2") {
				return false, fmt.Sprintf("%+v", ts)
			}
			for _, b := range before {
				if b.ID == x.ID {
					return false, "old id still present"
				}
			}
		}
		return true, ""
	})
	good := listTasks(t, client, "web")

	// A broken manifest: refused whole, nothing changes, the rejection is
	// visible in the API, in `driftless status` and on the status branch.
	work.WriteFile("apps/web.yaml", strings.Replace(deployment("web", 1, "echo v3; sleep 1000"), "image:", "imagee:", 1))
	work.WriteFile("apps/other.yaml", deployment("other", 1, "sleep 1000"))
	bad := work.Commit("broken")
	work.Push()
	waitFor(t, "rejection recorded", 20*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && s.LastRejection != nil && s.LastRejection.Commit == bad, fmt.Sprintf("%+v", s)
	})
	waitFor(t, "rejection on the status branch", 20*time.Second, func() (bool, string) {
		out, err := exec.Command(bin, "status", "--repo", url).CombinedOutput()
		return err == nil && strings.Contains(string(out), bad[:7]) && strings.Contains(string(out), "imagee"), string(out)
	})
	time.Sleep(2 * time.Second)
	assertUnchanged(t, good, listTasks(t, client, "web"))
	if n := len(listTasks(t, client, "other")); n != 0 {
		t.Fatalf("a workload from the rejected commit was started (%d containers)", n)
	}

	// Fix it, then kill -9 the agent and start it again: nothing restarts.
	work.WriteFile("apps/web.yaml", deployment("web", 3, "echo v2; sleep 1000"))
	work.Remove("apps/other.yaml")
	work.Commit("fix")
	work.Push()
	time.Sleep(2 * time.Second)
	good = listTasks(t, client, "web")
	ag.kill()
	ag = startAgent(t, opts)
	waitFor(t, "agent back", 20*time.Second, func() (bool, string) {
		s, err := ag.status()
		return err == nil && len(s.Replicas) == 3, fmt.Sprintf("%+v %v", s, err)
	})
	time.Sleep(3 * time.Second)
	assertUnchanged(t, good, listTasks(t, client, "web"))

	// SIGTERM stops the agent cleanly and leaves the containers running;
	// the next start, from a config file this time, adopts them.
	if err := ag.term(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v", err)
	}
	assertUnchanged(t, good, listTasks(t, client, "web"))
	cfgFile := filepath.Join(t.TempDir(), "agent.yaml")
	cfgYAML := fmt.Sprintf("node: node-1\nrepo: %s\ndataDir: %s\ncontainerdAddress: %s\nnamespace: %s\nimagesDir: %s\nlisten: %s\npoll: 300ms\nstatusInterval: 200ms\nresync: 1s\ncniConfDir: %s\ncniBinDir: %s\n",
		opts.repo, opts.dataDir, opts.sock, ns, opts.images, opts.api, testCNIConfDir(t), cniNet.BinDir)
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	ag = startAgentArgs(t, "node-1", bin, "agent", "--config", cfgFile)
	waitFor(t, "agent back from its config file", 20*time.Second, func() (bool, string) {
		s, err := (&agentProc{api: opts.api}).status()
		return err == nil && len(s.Replicas) == 3, fmt.Sprintf("%+v %v", s, err)
	})
	assertUnchanged(t, good, listTasks(t, client, "web"))

	// Delete the workload: its containers go, the foreign one stays.
	work.Remove("apps/web.yaml")
	work.Commit("remove web")
	work.Push()
	waitFor(t, "containers removed", 30*time.Second, func() (bool, string) {
		ts := listTasks(t, client, "web")
		return len(ts) == 0, fmt.Sprintf("%+v", ts)
	})
	if _, err := client.LoadContainer(ctx, "web-0-main-foreign"); err != nil {
		t.Fatalf("foreign container was touched: %v", err)
	}

	// The status branch reads as a change log: every commit names its
	// desired commit, leader and term.
	log := gitOut(t, work.Dir, "log", "--format=%H%x00%s%x00%(trailers:key=Desired-Commit,valueonly,separator=)%x00%(trailers:key=Leader,valueonly,separator=)%x00%(trailers:key=Term,valueonly,separator=)", "origin/driftless/status")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) < 4 {
		t.Fatalf("status branch has %d commits, want a change log:\n%s", len(lines), log)
	}
	for _, l := range lines {
		f := strings.Split(l, "\x00")
		if len(f) != 5 || f[3] != "node-1" || f[4] == "" {
			t.Fatalf("status commit without trailers: %q", l)
		}
	}
}

func assertUnchanged(t *testing.T, before, after []task) {
	t.Helper()
	pids := map[string]uint32{}
	for _, a := range after {
		pids[a.ID] = a.PID
	}
	for _, b := range before {
		if pids[b.ID] != b.PID || b.PID == 0 {
			t.Fatalf("container %s changed (pid %d -> %d); before %+v after %+v", b.ID, b.PID, pids[b.ID], before, after)
		}
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	fetch := exec.Command("git", "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
	fetch.Dir = dir
	if out, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("git fetch: %v\n%s", err, out)
	}
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}
