package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const configApp = `apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  greeting: %s
  LEVEL: debug
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData:
  password: planted-s3cr3t-value
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cfg}
spec:
  replicas: 1
  selector: {matchLabels: {app: cfg}}
  template:
    metadata: {labels: {app: cfg, tier: demo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c"]
          args:
            - echo "G=$GREETING L=$LEVEL N=$MY_NODE T=$MY_TIER M=$MEM_MI";
              echo "file=$(cat /etc/cfg/greeting)";
              echo "secretlen=$(wc -c < /etc/sec/password)";
              grep -q ' /etc/sec tmpfs' /proc/mounts || echo "secret-not-on-tmpfs";
              trap 'exit 0' TERM; sleep 1000 & wait
          env:
            - name: GREETING
              valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
            - name: MY_NODE
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
            - name: MY_TIER
              valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}
            - name: MEM_MI
              valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: app-secret, key: password}}
          envFrom:
            - configMapRef: {name: app-config}
          resources:
            limits: {memory: 32Mi}
          volumeMounts:
            - {name: cfg, mountPath: /etc/cfg}
            - {name: sec, mountPath: /etc/sec}
      volumes:
        - name: cfg
          configMap: {name: app-config}
        - name: sec
          secret: {secretName: app-secret, defaultMode: 0400}
`

// ConfigMaps and Secrets reach containers as env and files; a change to a
// ConfigMap replaces the replicas that use it; a secret value never shows
// in logs, the status branch or the data dir outside its tmpfs.
func TestConfigAndSecrets(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("app.yaml", fmt.Sprintf(configApp, "hello"))
	e.work.Commit("config app")
	e.work.Push()
	o := e.opts(t, "node-1")
	ag := startAgent(t, o)
	// A changed template rolls out: the new replica may get a new index
	// (a surge replica), so read the logs of every replica.
	logs := func() string {
		files, _ := filepath.Glob(filepath.Join(o.dataDir, "logs", "default", "deployment", "cfg", "*", "main.log"))
		var all string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all += string(b)
		}
		return all
	}
	waitLine := func(want string) {
		waitFor(t, "container output "+want, 60*time.Second, func() (bool, string) {
			b := logs()
			return strings.Contains(b, want), b
		})
	}
	waitLine("G=hello L=debug N=node-1 T=demo M=32")
	waitLine("file=hello")
	waitLine("secretlen=20")
	before := listTasks(t, e.client, "cfg")

	e.work.WriteFile("app.yaml", fmt.Sprintf(configApp, "bonjour"))
	e.work.Commit("config: bonjour")
	e.work.Push()
	waitLine("G=bonjour")
	waitLine("file=bonjour")
	waitFor(t, "the old replica gone", 30*time.Second, func() (bool, string) {
		after := listTasks(t, e.client, "cfg")
		return len(after) == 1, fmt.Sprint(after)
	})
	after := listTasks(t, e.client, "cfg")
	if len(after) != 1 || len(before) != 1 || after[0].ID == before[0].ID {
		t.Fatalf("a ConfigMap change should replace the replica: %+v -> %+v", before, after)
	}
	if strings.Contains(logs(), "secret-not-on-tmpfs") {
		t.Fatal("secret volume is not on tmpfs")
	}

	// The planted secret appears nowhere but in the container.
	ag.term()
	if strings.Contains(ag.logs.String(), "planted-s3cr3t-value") {
		t.Fatal("secret value in the agent's log")
	}
	gitOut(t, e.work.Dir, "log", "-1", "origin/driftless/status") // fetches
	if out, _ := exec.Command("git", "-C", e.work.Dir, "log", "-p", "origin/driftless/status").CombinedOutput(); strings.Contains(string(out), "planted-s3cr3t") || len(out) == 0 {
		t.Fatalf("secret value on the status branch (or no branch): %d bytes", len(out))
	}
	_ = filepath.Walk(o.dataDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.Contains(p, "/git/") {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "planted-s3cr3t-value") && !onTmpfs(p) {
			t.Errorf("secret value on disk in %s", p)
		}
		return nil
	})
}

func onTmpfs(p string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "tmpfs" && strings.HasPrefix(p, f[1]+"/") {
			return true
		}
	}
	return false
}

const lateConfigUser = `apiVersion: apps/v1
kind: Deployment
metadata: {name: late-user}
spec:
  replicas: 1
  selector: {matchLabels: {app: late-user}}
  template:
    metadata: {labels: {app: late-user}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo \"G=$GREETING file=$(cat /etc/late/greeting)\"; trap 'exit 0' TERM; sleep 1000 & wait"]
          env:
            - name: GREETING
              valueFrom: {configMapKeyRef: {name: late, key: greeting}}
          volumeMounts:
            - {name: late, mountPath: /etc/late}
      volumes:
        - name: late
          configMap: {name: late}
`

// A commit whose Deployment refers to a ConfigMap it does not hold is
// applied, as Kubernetes would: that replica stays Pending
// (CreateContainerConfigError, naming the ConfigMap) and creates no
// container, the other workload runs, and validate only warns. The commit
// that adds the ConfigMap starts the replica.
func TestMissingConfigMapPendingThenStarts(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("late-user.yaml", lateConfigUser)
	e.work.WriteFile("other.yaml", deployment("other", 1, "sleep 1000"))
	e.work.Commit("a Deployment before its ConfigMap")
	e.work.Push()

	out, err := exec.Command(e.bin, "validate", e.work.Dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `warning: `) || !strings.Contains(string(out), `"late": ConfigMap not found in namespace default of this commit`) {
		t.Fatalf("validate: %v\n%s", err, out)
	}

	o := e.opts(t, "node-1")
	ag := startAgent(t, o)
	waitFor(t, "late-user pending with the reason, other running", 60*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		if s.LastRejection != nil {
			t.Fatalf("the commit was refused: %v", s.LastRejection.Errors)
		}
		ok := 0
		for _, r := range s.Replicas {
			if r.Workload.Name == "late-user" && r.Status.Phase == "Pending" && r.Status.Reason == "CreateContainerConfigError" {
				ok++
			}
			if r.Workload.Name == "other" && r.Status.Phase == "Running" {
				ok++
			}
		}
		return ok == 2, fmt.Sprintf("%+v", s.Replicas)
	})
	waitFor(t, "the reason on the status branch", 30*time.Second, func() (bool, string) {
		p, _ := statusFile(t, e.work.Dir, "placements/default/Deployment.late-user.yaml")
		for _, r := range p.Replicas {
			if r.Status != nil && r.Status.Reason == "CreateContainerConfigError" && strings.Contains(r.Status.Message, `configmap "late" not found`) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Replicas)
	})
	if ts := listTasks(t, e.client, "late-user"); len(ts) != 0 {
		t.Fatalf("containers of late-user without its ConfigMap: %+v", ts)
	}
	if !strings.Contains(ag.logs.String(), `configmap \"late\" not found`) && !strings.Contains(ag.logs.String(), `configmap "late" not found`) {
		t.Fatalf("the agent log does not name the missing ConfigMap:\n%s", tail(ag.logs.String(), 20))
	}
	other := listTasks(t, e.client, "other")

	e.work.WriteFile("late.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\ndata: {greeting: finally}\n")
	e.work.Commit("the ConfigMap arrives")
	e.work.Push()
	waitFor(t, "late-user running with its ConfigMap", 60*time.Second, func() (bool, string) {
		files, _ := filepath.Glob(filepath.Join(o.dataDir, "logs", "default", "deployment", "late-user", "*", "main.log"))
		var all string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all += string(b)
		}
		return strings.Contains(all, "G=finally file=finally") && running(listTasks(t, e.client, "late-user")) == 1, all
	})
	waitFor(t, "late-user reported Running", 30*time.Second, func() (bool, string) {
		s, err := ag.status()
		if err != nil {
			return false, err.Error()
		}
		for _, r := range s.Replicas {
			if r.Workload.Name == "late-user" && r.Status.Phase != "Running" {
				return false, fmt.Sprintf("%+v", s.Replicas)
			}
		}
		return true, ""
	})
	assertUnchanged(t, other, listTasks(t, e.client, "other"))
}
