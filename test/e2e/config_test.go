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
		files, _ := filepath.Glob(filepath.Join(o.dataDir, "logs", "default", "cfg", "*", "main.log"))
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
