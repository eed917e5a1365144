package manifest

import (
	"strings"
	"testing"
)

// Fields `kubectl get -o yaml` writes into pods are accepted as Kubernetes
// means them: the default scheduler, the priority admission derived, the
// preemption policy, a node name.
func TestExportedPodFields(t *testing.T) {
	pod := func(extra string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + extra + "  containers: [{name: c, image: busybox, volumeMounts: [{name: d, mountPath: /d, subPathExpr: \"$(POD)\"}]}]\n  volumes: [{name: d, emptyDir: {}}]\n"
	}
	set, err := Load([]File{{Path: "p.yaml", Data: []byte(pod("  schedulerName: default-scheduler\n  priority: 0\n  preemptionPolicy: Never\n  nodeName: node-2\n"))}})
	if err != nil {
		t.Fatal(err)
	}
	w := set.Workloads[0]
	if !w.PreemptNever || w.Template.Spec.NodeName != "node-2" || len(set.Warnings) != 0 {
		t.Fatalf("workload %+v warnings %v", w, set.Warnings)
	}
	set, err = Load([]File{{Path: "p.yaml", Data: []byte(pod("  priority: 1000\n"))}})
	if err != nil || len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].String(), "its value 0 is used") {
		t.Fatalf("a priority without its class: %v %v", err, set.Warnings)
	}
	for extra, want := range map[string]string{
		"  schedulerName: volcano\n":  "only default-scheduler",
		"  preemptionPolicy: Maybe\n": "must be PreemptLowerPriority or Never",
		"  nodeName: Node_2\n":        "spec.nodeName",
	} {
		if _, err := Load([]File{{Path: "p.yaml", Data: []byte(pod(extra))}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want %q, got %v", extra, want, err)
		}
	}
	bad := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, volumeMounts: [{name: d, mountPath: /d, subPath: a, subPathExpr: b}]}]\n  volumes: [{name: d, emptyDir: {}}]\n"
	if _, err := Load([]File{{Path: "p.yaml", Data: []byte(bad)}}); err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("subPath and subPathExpr: %v", err)
	}
}

func TestRuntimeClasses(t *testing.T) {
	rc := "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\n---\n"
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  runtimeClassName: gvisor\n  containers: [{name: c, image: busybox}]\n"
	set, err := Load([]File{{Path: "p.yaml", Data: []byte(rc + pod)}})
	if err != nil || set.Workloads[0].Runtime != "io.containerd.runsc.v1" {
		t.Fatalf("%v %+v", err, set)
	}
	if _, err := Load([]File{{Path: "p.yaml", Data: []byte(pod)}}); err == nil || !strings.Contains(err.Error(), "no RuntimeClass of that name") {
		t.Fatalf("a missing class: %v", err)
	}
	if RuntimeOf("io.containerd.kata.v2") != "io.containerd.kata.v2" || RuntimeOf("runc") != "io.containerd.runc.v2" {
		t.Fatal("RuntimeOf")
	}
}

// Lists (kind: List, <Kind>List) are their items; custom resources and
// Kubernetes' own kinds driftless does not apply are skipped, not refused;
// a ReplicationController is a workload.
func TestListsCustomResourcesAndReplicationControllers(t *testing.T) {
	doc := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
  data: {k: v}
- apiVersion: v1
  kind: ReplicationController
  metadata: {name: legacy}
  spec:
    replicas: 2
    template:
      metadata: {labels: {app: legacy}}
      spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
spec: {}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec: {}
`
	set, err := Load([]File{{Path: "l.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.ConfigMaps) != 1 || len(set.Workloads) != 1 || set.Workloads[0].Kind != "ReplicationController" || set.Workloads[0].Replicas != 2 || len(set.Skipped) != 2 {
		t.Fatalf("configmaps %d workloads %+v skipped %+v", len(set.ConfigMaps), set.Workloads, set.Skipped)
	}
	if set.Workloads[0].Line != 8 {
		t.Errorf("the item's line: %d", set.Workloads[0].Line)
	}
	// A typo in one of Kubernetes' own groups stays an error.
	if _, err := Load([]File{{Path: "t.yaml", Data: []byte("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")}}); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("typo: %v", err)
	}
}

// A Windows DaemonSet beside the Linux one (as CSI drivers ship them) is
// accepted with its Windows paths, warned about, and never placed.
func TestWindowsPodsAccepted(t *testing.T) {
	doc := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: csi-node-windows}
spec:
  selector: {matchLabels: {app: csi}}
  template:
    metadata: {labels: {app: csi}}
    spec:
      nodeSelector: {kubernetes.io/os: windows}
      volumes: [{name: kubelet, hostPath: {path: 'C:\var\lib\kubelet', type: Directory}}]
      containers:
      - name: node
        image: x
        volumeMounts: [{name: kubelet, mountPath: 'C:\var\lib\kubelet'}]
`
	set, err := Load([]File{{Path: "w.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].String(), "a Windows pod") {
		t.Fatalf("warnings %v", set.Warnings)
	}
	linux := strings.Replace(doc, "nodeSelector: {kubernetes.io/os: windows}", "nodeSelector: {kubernetes.io/os: linux}", 1)
	if _, err := Load([]File{{Path: "w.yaml", Data: []byte(linux)}}); err == nil || !strings.Contains(err.Error(), "must be an absolute path") {
		t.Fatalf("a Windows path in a Linux pod: %v", err)
	}
}
