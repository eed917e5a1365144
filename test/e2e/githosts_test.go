package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"driftless.dev/driftless/internal/testenv"
)

// An agent follows a repository on a real HTTPS Git host (nginx, git
// http-backend) whose certificate comes from a private CA: it fetches
// with a token, pushes its status branch there, keeps going across a
// rotated certificate of the same CA, and never shows the token. Without
// the CA, or with a wrong password, it says why and runs nothing new;
// suspend commits over the same host with the same flags.
func TestHTTPSPrivateCA(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, trapSleep))
	e.work.Commit("web")
	e.work.Push()
	ca := testenv.NewCA(t, "driftless test CA")
	const token = "tok-9f8e7d6c5b4a"
	srv := testenv.StartHTTPSGit(t, filepath.Dir(e.repoDir), ca, map[string]string{"x-access-token": token, "deploy": "right-password"})
	url := srv.URL + "/" + filepath.Base(e.repoDir)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("token", token)

	o := e.opts(t, "node-1")
	o.repo = url
	o.poll = "1s"
	o.extra = []string{"--ca-file", ca.PEMFile, "--token-file", tokenFile}
	ag := startAgent(t, o)
	waitFor(t, "web running from the HTTPS host", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 1, ""
	})
	waitFor(t, "the status branch pushed over HTTPS", 30*time.Second, func() (bool, string) {
		return srv.Requests("POST", "git-receive-pack", "x-access-token") > 0, ""
	})
	if out, err := exec.Command("git", "--git-dir", e.repoDir, "rev-parse", "--verify", "refs/heads/driftless/status").CombinedOutput(); err != nil {
		t.Fatalf("no status branch on the host: %s", out)
	}

	// The host's certificate is rotated (same CA): the next change still
	// arrives.
	srv.RotateCertificate(t)
	e.work.WriteFile("web.yaml", deployment("web", 2, trapSleep))
	e.work.Commit("web: 2")
	e.work.Push()
	waitFor(t, "web: 2 after the certificate rotation", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 2, ""
	})
	ag.kill()
	if strings.Contains(ag.logs.String(), token) {
		t.Fatal("the token reached the agent's log")
	}

	// The same node, restarted without the CA, then with a wrong
	// password: a clear error, the last good state kept, nothing new run.
	e.work.WriteFile("web.yaml", deployment("web", 3, trapSleep))
	e.work.Commit("web: 3")
	e.work.Push()
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"unknown CA", []string{"--token-file", tokenFile}, "x509"},
		{"wrong password", []string{"--ca-file", ca.PEMFile, "--basic-auth-file", write("basic", "deploy:wrong-password")}, "authentication"},
	} {
		bad := o
		bad.api = freePort(t)
		bad.extra = tc.extra
		a := startAgent(t, bad)
		waitFor(t, tc.name+": the fetch error shown", 30*time.Second, func() (bool, string) {
			v, err := a.source()
			return err == nil && strings.Contains(strings.ToLower(v.Source.LastError), tc.want), fmt.Sprintf("%+v %v", v, err)
		})
		time.Sleep(2 * time.Second)
		if n := running(listTasks(t, e.client, "web")); n != 2 {
			t.Fatalf("%s: %d replicas running, want the last good 2", tc.name, n)
		}
		v, _ := a.source()
		if strings.Contains(v.Source.LastError, "right-password") || strings.Contains(v.Source.LastError, "wrong-password") {
			t.Fatalf("%s: a password in the error: %s", tc.name, v.Source.LastError)
		}
		a.kill()
	}

	// suspend with the agent's credential flags, over the same host.
	out, err := exec.Command(e.bin, "suspend", "web", "--repo", url, "--ca-file", ca.PEMFile, "--token-file", tokenFile, "--author", "Ops <ops@example.com>").CombinedOutput()
	if err != nil {
		t.Fatalf("suspend over HTTPS: %v\n%s", err, out)
	}
	if got := testenv.Git(t, filepath.Dir(e.repoDir), "--git-dir", e.repoDir, "log", "-1", "--format=%s", "main"); !strings.HasPrefix(got, "suspend default/Deployment/web") && !strings.HasPrefix(got, "suspend web") {
		t.Fatalf("last commit on main: %q", got)
	}
}

// An agent follows a repository on a real OpenSSH server with a deploy
// key and a strict known_hosts, and pushes its status branch there; a
// changed host key is refused with a clear error and nothing new runs;
// an encrypted key with its passphrase file, and a key held by
// ssh-agent, reach the same server; suspend commits over it.
func TestSSHDeployKey(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, trapSleep))
	e.work.Commit("web")
	e.work.Push()
	srv := testenv.StartSSHGit(t)
	url := srv.URL(e.repoDir)

	o := e.opts(t, "node-1")
	o.repo = url
	o.poll = "1s"
	o.extra = []string{"--ssh-key", srv.Key, "--known-hosts", srv.KnownHosts}
	ag := startAgent(t, o)
	waitFor(t, "web running from the SSH host", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 1, ""
	})
	waitFor(t, "the status branch pushed over SSH", 30*time.Second, func() (bool, string) {
		out, err := exec.Command("git", "--git-dir", e.repoDir, "rev-parse", "--verify", "refs/heads/driftless/status").CombinedOutput()
		return err == nil, string(out)
	})
	ag.kill()

	// The server's host key is not the one known: refused, the last good
	// state kept.
	e.work.WriteFile("web.yaml", deployment("web", 2, trapSleep))
	e.work.Commit("web: 2")
	e.work.Push()
	other := testenv.KnownHostsFor(t, srv.Addr, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
	bad := o
	bad.api = freePort(t)
	bad.extra = []string{"--ssh-key", srv.Key, "--known-hosts", other}
	a := startAgent(t, bad)
	waitFor(t, "the host key refusal shown", 30*time.Second, func() (bool, string) {
		v, err := a.source()
		return err == nil && strings.Contains(v.Source.LastError, "key mismatch"), fmt.Sprintf("%+v %v", v, err)
	})
	time.Sleep(2 * time.Second)
	if n := running(listTasks(t, e.client, "web")); n != 1 {
		t.Fatalf("%d replicas running after a refused host key, want the last good 1", n)
	}
	a.kill()

	status := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(e.bin, append([]string{"status", "--repo", url, "--known-hosts", srv.KnownHosts}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("status %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	pass := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(pass, []byte(srv.Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := status(nil, "--ssh-key", srv.EncryptedKey, "--ssh-key-passphrase-file", pass); !strings.Contains(out, "node-1") {
		t.Fatalf("status with the encrypted key:\n%s", out)
	}

	// A key held by ssh-agent, no --ssh-key.
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agentCmd.Process.Kill(); _ = agentCmd.Wait() })
	waitFor(t, "ssh-agent listening", 10*time.Second, func() (bool, string) { _, err := os.Stat(sock); return err == nil, "" })
	add := exec.Command("ssh-add", srv.Key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	if out := status([]string{"SSH_AUTH_SOCK=" + sock}); !strings.Contains(out, "node-1") {
		t.Fatalf("status through ssh-agent:\n%s", out)
	}

	out, err := exec.Command(e.bin, "suspend", "web", "--repo", url, "--ssh-key", srv.Key, "--known-hosts", srv.KnownHosts, "--author", "Ops <ops@example.com>").CombinedOutput()
	if err != nil {
		t.Fatalf("suspend over SSH: %v\n%s", err, out)
	}
	if got := testenv.Git(t, filepath.Dir(e.repoDir), "--git-dir", e.repoDir, "log", "-1", "--format=%s", "main"); !strings.HasPrefix(got, "suspend") {
		t.Fatalf("last commit on main: %q", got)
	}
}

// An agent writes its status branch to two mirrors: both get each
// commit; with the first down it goes on with the second, and the first
// catches up (fast-forward) once it is back.
func TestStatusMirrorsAgent(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, trapSleep))
	e.work.Commit("web")
	e.work.Push()
	base := t.TempDir()
	mirrorA := filepath.Join(base, "status-a.git")
	testenv.InitBareRepo(t, mirrorA)
	dirB, urlB := testenv.NewBareRepo(t)
	d := testenv.GitDaemon(t, base)
	urlA := d.URL + "/status-a.git"
	head := func(dir string) string {
		out, err := exec.Command("git", "--git-dir", dir, "rev-parse", "--verify", "-q", "refs/heads/driftless/status").Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	o := e.opts(t, "node-1")
	o.poll = "1s"
	o.extra = []string{"--status-repo", urlA + "," + urlB}
	ag := startAgent(t, o)
	waitFor(t, "web running, both mirrors at one status head", 60*time.Second, func() (bool, string) {
		a, b := head(mirrorA), head(dirB)
		return running(listTasks(t, e.client, "web")) == 1 && a != "" && a == b, a + " " + b
	})

	d.Stop(t)
	e.work.WriteFile("web.yaml", deployment("web", 2, trapSleep))
	e.work.Commit("web: 2")
	e.work.Push()
	before := head(mirrorA)
	waitFor(t, "web: 2 with the first status mirror down", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 2 && head(dirB) != before, ""
	})
	d.Start(t)
	e.work.WriteFile("web.yaml", deployment("web", 3, trapSleep))
	e.work.Commit("web: 3")
	e.work.Push()
	waitFor(t, "the first mirror caught up", 60*time.Second, func() (bool, string) {
		a, b := head(mirrorA), head(dirB)
		return running(listTasks(t, e.client, "web")) == 3 && a == b && a != before, a + " " + b
	})
	if s, err := ag.status(); err != nil || strings.Contains(fmt.Sprint(s), "status-mirrors") {
		t.Fatalf("mirrors reported as forked: %+v %v", s, err)
	}
}

// An agent follows a repository on an HTTPS host that asks for a client
// certificate of its CA (mutual TLS) and shows its own; without one it
// is refused with the host's answer. When the host answers 429 with a
// Retry-After, the agent does not ask it again before that time, keeps
// what runs, and takes the next change once the host serves again.
func TestHTTPSClientCertAndRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("web.yaml", deployment("web", 1, trapSleep))
	e.work.Commit("web")
	e.work.Push()
	ca := testenv.NewCA(t, "driftless test CA")
	srv := testenv.StartHTTPSGit(t, filepath.Dir(e.repoDir), ca, map[string]string{"deploy": "right-password"})
	url := srv.MTLSURL + "/" + filepath.Base(e.repoDir)
	cert, key := ca.IssueClient(t, t.TempDir(), "node-1")

	// Without a client certificate: refused, nothing runs.
	o := e.opts(t, "node-1")
	o.repo = url
	o.poll = "500ms"
	o.extra = []string{"--ca-file", ca.PEMFile, "--status-repo", e.url}
	a := startAgent(t, o)
	waitFor(t, "no client certificate: the host's refusal shown", 30*time.Second, func() (bool, string) {
		v, err := a.source()
		return err == nil && strings.Contains(v.Source.LastError, "400"), fmt.Sprintf("%+v %v", v, err)
	})
	if n := running(listTasks(t, e.client, "web")); n != 0 {
		t.Fatalf("%d replicas run without a fetch", n)
	}
	a.kill()

	o.api = freePort(t)
	o.extra = append(o.extra, "--client-cert-file", cert, "--client-key-file", key)
	a = startAgent(t, o)
	waitFor(t, "web running from the mutual-TLS host", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 1, ""
	})

	// The host throttles: one request answered 429, then none until its
	// Retry-After has passed (polls every 500 ms would make a dozen).
	srv.Throttle(t, true)
	throttled := func() int { return srv.Requests("\" 429 ") }
	waitFor(t, "a fetch answered 429", 30*time.Second, func() (bool, string) { return throttled() > 0, "" })
	e.work.WriteFile("web.yaml", deployment("web", 2, trapSleep))
	e.work.Commit("web: 2")
	e.work.Push()
	time.Sleep(time.Duration(testenv.ThrottleSeconds)*time.Second - 2*time.Second)
	if n := throttled(); n != 1 {
		t.Fatalf("the host was asked %d times within its Retry-After of %d s, want once", n, testenv.ThrottleSeconds)
	}
	v, err := a.source()
	if err != nil || !strings.Contains(v.Source.LastError, "429") || !strings.Contains(v.Source.LastError, "retry after") {
		t.Fatalf("the source's error does not say the host throttles: %+v %v", v, err)
	}
	if n := running(listTasks(t, e.client, "web")); n != 1 {
		t.Fatalf("%d replicas while the host throttles, want the last good 1", n)
	}
	srv.Throttle(t, false)
	waitFor(t, "web: 2 once the host serves again", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "web")) == 2, ""
	})
}
