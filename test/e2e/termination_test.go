package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A container's termination message reaches its status: what it wrote to
// /dev/termination-log, or with FallbackToLogsOnError the tail of its
// log.
func TestTerminationMessages(t *testing.T) {
	e := newEnv(t)
	never := func(name, script, extra string) string {
		p := pod(name, script)
		p = strings.Replace(p, "spec:\n", "spec:\n  restartPolicy: Never\n", 1)
		return p + extra
	}
	e.work.WriteFile("file.yaml", never("by-file", "echo 'config key missing: db.url' > /dev/termination-log; exit 3", ""))
	e.work.WriteFile("logs.yaml", never("by-logs", "echo starting; echo 'panic: no route to db'; exit 2", "      terminationMessagePolicy: FallbackToLogsOnError\n"))
	e.work.Commit("two pods that fail with a message")
	e.work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	for name, want := range map[string]string{
		"by-file": "exit code 3: config key missing: db.url",
		"by-logs": "exit code 2: starting\npanic: no route to db",
	} {
		waitFor(t, name+" failed with its message", 60*time.Second, func() (bool, string) {
			rs, err := replicasOf(ag.api, "Pod", name)
			if err != nil {
				return false, err.Error()
			}
			r := rs[0]
			return r.Status.Phase == "Failed" && r.Status.Message == want, fmt.Sprintf("%+v", r)
		})
	}
}

// $(VAR) in env values, command, args and subPathExpr is expanded from
// the container's variables before the shell sees it, as in Kubernetes.
func TestVariableExpansion(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	e.work.WriteFile("expand.yaml", fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {app.conf: "mode=fast"}
---
apiVersion: v1
kind: Pod
metadata: {name: expand-demo}
spec:
  restartPolicy: Never
  volumes:
  - {name: out, hostPath: {path: %s}}
  - name: proj
    projected:
      sources:
      - configMap: {name: app}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - {name: GREETING, value: "hello $(POD_NAME)"}
    - {name: KEPT, value: "$$(POD_NAME) $(NOT_SET)"}
    command: ["sh", "-c"]
    args: ["echo -n +scratch > /scratch/s; cat /proj/app.conf /proj/name /scratch/s > /out/proj; echo \"$(GREETING) | $KEPT\" > /out/said"]
    volumeMounts: [{name: out, mountPath: /out, subPathExpr: "$(POD_NAME)"}, {name: proj, mountPath: /proj}, {name: scratch, mountPath: /scratch}]
`, host))
	e.work.Commit("expansion")
	e.work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "the pod wrote through its expanded subPath", 60*time.Second, func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(host, "expand-demo", "said"))
		rs, _ := replicasOf(ag.api, "Pod", "expand-demo")
		return err == nil && string(b) == "hello expand-demo | $(POD_NAME) $(NOT_SET)\n", fmt.Sprintf("%q %v %+v", b, err, rs)
	})
	// The projected volume: the ConfigMap's key and the pod's name.
	if b, err := os.ReadFile(filepath.Join(host, "expand-demo", "proj")); err != nil || string(b) != "mode=fastexpand-demo+scratch" {
		t.Fatalf("projected volume: %q %v", b, err)
	}
}

// A RuntimeClass names the containerd runtime of the pods that use it:
// runc's runs, one whose shim the node lacks leaves its pod Pending with
// containerd's error naming it.
func TestRuntimeClass(t *testing.T) {
	e := newEnv(t)
	classes := `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: standard}
handler: runc
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: sandboxed}
handler: runsc
---
`
	withClass := func(name, class string) string {
		return strings.Replace(pod(name, trapSleep), "spec:\n", "spec:\n  runtimeClassName: "+class+"\n", 1)
	}
	e.work.WriteFile("rc.yaml", classes+withClass("std", "standard")+"---\n"+withClass("sbx", "sandboxed"))
	e.work.Commit("two runtime classes")
	e.work.Push()
	ag := startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "std running, sbx refused by containerd", 60*time.Second, func() (bool, string) {
		std, _ := replicasOf(ag.api, "Pod", "std")
		sbx, _ := replicasOf(ag.api, "Pod", "sbx")
		return std[0].Status.Phase == "Running" && sbx[0].Status.Phase != "Running" && strings.Contains(sbx[0].Status.Message, "runsc"),
			fmt.Sprintf("%+v %+v", std, sbx)
	})
}

// A v1 ReplicationController, and a kind: List holding it, run as a
// ReplicaSet does.
func TestReplicationControllerInAList(t *testing.T) {
	e := newEnv(t)
	e.work.WriteFile("legacy.yaml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ReplicationController
  metadata: {name: legacy}
  spec:
    replicas: 2
    template:
      metadata: {labels: {app: legacy}}
      spec:
        terminationGracePeriodSeconds: 1
        containers:
`+busyboxContainer("        ", "main", trapSleep))
	e.work.Commit("a ReplicationController in a List")
	e.work.Push()
	startAgent(t, e.opts(t, "node-1"))
	waitFor(t, "two replicas of the ReplicationController", 60*time.Second, func() (bool, string) {
		return running(listTasks(t, e.client, "legacy")) == 2, fmt.Sprint(listTasks(t, e.client, "legacy"))
	})
}
