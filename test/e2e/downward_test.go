package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

const downwardApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: info}
spec:
  replicas: 1
  selector: {matchLabels: {app: info}}
  template:
    metadata:
      labels: {app: info, tier: web}
      annotations: {note: "say \"hi\""}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c"]
          args:
            - for f in name ns labels annotations tier mem; do echo "$f=$(cat /etc/info/$f | tr '\n' ';')"; done;
              echo "mode=$(stat -c %a /etc/info/name) $(stat -c %a /etc/info/mem)";
              touch /etc/info/x 2>/dev/null || echo read-only;
              trap 'exit 0' TERM; sleep 1000 & wait
          resources:
            limits: {memory: 48Mi}
          volumeMounts:
            - {name: info, mountPath: /etc/info}
        - name: side
          image: busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo side; trap 'exit 0' TERM; sleep 1000 & wait"]
      volumes:
        - name: info
          downwardAPI:
            defaultMode: 0444
            items:
              - {path: name, fieldRef: {fieldPath: metadata.name}}
              - {path: ns, fieldRef: {fieldPath: metadata.namespace}}
              - {path: labels, fieldRef: {fieldPath: metadata.labels}}
              - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
              - {path: tier, fieldRef: {fieldPath: "metadata.labels['tier']"}}
              - {path: mem, mode: 0400, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}
`

// A downwardAPI volume reaches the container as Kubernetes writes it, and
// the agent's own binary reads the container's output with driftless logs
// (the shim's log writer is the same binary).
func TestDownwardAPIVolumeAndLogsCommand(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("app.yaml", downwardApp)
	e.work.Commit("info app")
	e.work.Push()
	o := e.opts(t, "node-1")
	startAgent(t, o)
	logs := func(args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"logs", "--data-dir", o.dataDir}, args...)...).CombinedOutput()
		return string(out), err
	}
	want := []string{
		"name=info-0",
		"ns=default",
		`labels=app="info";tier="web"`, // one key="value" a line, no final newline
		`annotations=note="say \"hi\""`,
		"tier=web",
		"mem=48",
		"mode=444 400",
		"read-only",
	}
	var out string
	waitFor(t, "the container's output through driftless logs", 60*time.Second, func() (bool, string) {
		out, _ = logs("info", "-c", "main")
		return strings.Count(out, "\n") >= len(want), out
	})
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("driftless logs info -c main:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	out, err := logs("info")
	if err == nil || !strings.Contains(out, "a container name must be specified for default/deployment/info replica 0, choose one of: [main side]") {
		t.Fatalf("driftless logs info: %v\n%s", err, out)
	}
	if out, err := logs("info", "-c", "side", "--tail", "1"); err != nil || out != "side\n" {
		t.Fatalf("driftless logs info -c side: %v %q", err, out)
	}
}
