package manifest

import (
	"fmt"
	"strings"
	"testing"
)

const backendDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      serviceAccountName: backend
      automountServiceAccountToken: false
      containers:
      - name: app
        image: busybox
        ports: [{name: http, containerPort: 8080}]
`

func TestServiceAndServiceAccountAccepted(t *testing.T) {
	set, probs := load(t, "app.yaml", backendDeployment+`---
apiVersion: v1
kind: ServiceAccount
metadata: {name: backend}
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  type: NodePort
  selector: {app: backend}
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
---
apiVersion: v1
kind: Service
metadata: {name: backend-headless}
spec:
  clusterIP: None
  selector: {app: backend}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  loadBalancerIP: 1.2.3.4
  selector: {app: backend}
  ports: [{port: 443, targetPort: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: db.example.com
`)
	if probs != nil {
		t.Fatal(probs)
	}
	if len(set.Services) != 4 || len(set.ServiceAccounts) != 1 || len(set.Skipped) != 0 {
		t.Fatalf("services %d accounts %d skipped %v", len(set.Services), len(set.ServiceAccounts), set.Skipped)
	}
	w := warnings(set)
	if len(w) != 1 || !strings.Contains(w[0], "spec.type") || !strings.Contains(w[0], "served as a NodePort") {
		t.Fatalf("want one LoadBalancer warning, got %q", w)
	}
	np := set.Services[0].Spec
	if np.Ports[0].Target().StrVal != "http" || np.Ports[1].NodePort != 30053 || np.AffinityTimeout() != 10800 {
		t.Fatalf("ports %+v", np.Ports)
	}
	if !set.Services[1].Spec.Headless() || !set.Services[2].Spec.NeedsNodePorts() {
		t.Fatal("headless or load balancer not recognised")
	}
}

func TestServiceProblems(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"bad type", `{type: Cluster, ports: [{port: 80}]}`, "spec.type: \"Cluster\": must be ClusterIP"},
		{"no ports", `{selector: {app: a}}`, "spec.ports: required"},
		{"unnamed ports", `{ports: [{port: 80}, {port: 81}]}`, "spec.ports[0].name: required when"},
		{"duplicate name", `{ports: [{name: a, port: 80}, {name: a, port: 81}]}`, "spec.ports[1].name: \"a\": duplicate port name"},
		{"port range", `{ports: [{port: 70000}]}`, "spec.ports[0].port: \"70000\": must be between 1 and 65535"},
		{"sctp", `{ports: [{port: 80, protocol: SCTP}]}`, "must be TCP or UDP"},
		{"nodePort on ClusterIP", `{ports: [{port: 80, nodePort: 30001}]}`, "only for type NodePort or LoadBalancer"},
		{"nodePort range", `{type: NodePort, ports: [{port: 80, nodePort: 80}]}`, "must be between 30000 and 32767"},
		{"bad cluster IP", `{clusterIP: 10.96.0.300, ports: [{port: 80}]}`, "spec.clusterIP: \"10.96.0.300\": must be an IPv4 address"},
		{"headless NodePort", `{type: NodePort, clusterIP: None, ports: [{port: 80}]}`, "a headless Service cannot be of type NodePort"},
		{"bad target name", `{ports: [{port: 80, targetPort: "Not_A_Name"}]}`, "spec.ports[0].targetPort"},
		{"ExternalName without name", `{type: ExternalName}`, "spec.externalName: required"},
		{"unknown field", `{ports: [{port: 80}], clusterIp: 10.96.0.5}`, "spec.clusterIp"},
		{"ipv6", `{ipFamilies: [IPv6], ports: [{port: 80}]}`, "only IPv4 is supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := load(t, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: "+tc.spec+"\n")
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Fatalf("want %q in %q", tc.want, probs)
			}
			if !strings.HasPrefix(strings.Join(probs, "\n"), "svc.yaml:") {
				t.Fatalf("problems must name the file and line: %q", probs)
			}
		})
	}
}

func TestServiceAddressConflicts(t *testing.T) {
	svc := func(name, spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: " + spec + "\n"
	}
	_, probs := load(t,
		"a.yaml", svc("a", `{clusterIP: 10.96.0.20, type: NodePort, ports: [{port: 80, nodePort: 30080}]}`),
		"b.yaml", svc("b", `{clusterIP: 10.96.0.20, ports: [{port: 80}]}`),
		"c.yaml", svc("c", `{type: NodePort, ports: [{port: 80, nodePort: 30080}]}`),
		"d.yaml", svc("d", `{type: NodePort, ports: [{port: 80, nodePort: 30080, protocol: UDP}]}`),
	)
	got := strings.Join(probs, "\n")
	if len(probs) != 2 || !strings.Contains(got, "b.yaml:4: spec.clusterIP: \"10.96.0.20\": already asked for by Service default/a (a.yaml:1)") ||
		!strings.Contains(got, "c.yaml:4: spec.ports[0].nodePort: \"30080\": already asked for by Service default/a") {
		t.Fatalf("want the later clusterIP and nodePort refused (UDP is another port), got:\n%s", got)
	}
}

func TestServiceAccountReferences(t *testing.T) {
	// Missing: a warning, the workload's hash marks it; present: neither.
	set, probs := load(t, "app.yaml", backendDeployment)
	if probs != nil {
		t.Fatal(probs)
	}
	w := strings.Join(warnings(set), "\n")
	if !strings.Contains(w, "app.yaml:9: spec.template.spec.serviceAccountName: \"backend\": ServiceAccount not found in namespace default") {
		t.Fatalf("missing ServiceAccount not warned: %s", w)
	}
	missing := set.Workloads[0]
	if missing.MissingServiceAccount != "backend" {
		t.Fatalf("MissingServiceAccount %q", missing.MissingServiceAccount)
	}
	set, probs = load(t, "app.yaml", backendDeployment, "sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: backend}\n")
	if probs != nil || len(set.Warnings) != 0 {
		t.Fatalf("%v %v", probs, warnings(set))
	}
	if set.Workloads[0].SpecHash == missing.SpecHash || set.Workloads[0].MissingServiceAccount != "" {
		t.Fatal("adding the ServiceAccount must change the spec hash (the Pending replicas start)")
	}
	// A pod naming its account without opting out is told no token is
	// mounted; the account's own automount: false opts out too.
	withToken := strings.Replace(backendDeployment, "      automountServiceAccountToken: false\n", "", 1)
	set, _ = load(t, "app.yaml", withToken, "sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: backend}\n")
	if w := strings.Join(warnings(set), "\n"); !strings.Contains(w, "no service account token is mounted") {
		t.Fatalf("want the token warning, got %q", w)
	}
	set, _ = load(t, "app.yaml", withToken, "sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: backend}\nautomountServiceAccountToken: false\n")
	if len(set.Warnings) != 0 {
		t.Fatalf("the account opted out: %q", warnings(set))
	}
}

func TestPodDNSFields(t *testing.T) {
	pod := func(spec string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: busybox}]\n" + spec
	}
	set, probs := load(t, "p.yaml", pod(`  hostname: web-0
  subdomain: web
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.0.0.53]
    searches: [corp.example.com]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local, bar.local]}]
  enableServiceLinks: false
`))
	if probs != nil {
		t.Fatal(probs)
	}
	s := set.Workloads[0].Template.Spec
	if s.EffectiveDNSPolicy() != DNSNone || s.ServiceLinks() || s.ServiceAccount() != "default" || len(s.HostAliases[0].Hostnames) != 2 {
		t.Fatalf("%+v", s)
	}
	for _, tc := range []struct{ spec, want string }{
		{"  dnsPolicy: Cluster\n", "spec.dnsPolicy: \"Cluster\": must be ClusterFirst"},
		{"  dnsPolicy: None\n", "spec.dnsConfig.nameservers: required"},
		{"  dnsConfig: {nameservers: [a.b.c.d]}\n", "spec.dnsConfig.nameservers[0]: \"a.b.c.d\": must be an IP address"},
		{"  dnsConfig: {nameservers: [1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4]}\n", "at most 3 nameservers"},
		{"  hostAliases: [{ip: nope, hostnames: [a]}]\n", "spec.hostAliases[0].ip"},
		{"  subdomain: Not_Valid\n", "spec.subdomain"},
		{"  serviceAccountName: Bad_Name\n", "spec.serviceAccountName"},
	} {
		_, probs := load(t, "p.yaml", pod(tc.spec))
		if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
			t.Errorf("%q: want %q in %q", tc.spec, tc.want, probs)
		}
	}
	host := &PodSpec{HostNetwork: true}
	if host.EffectiveDNSPolicy() != DNSDefault {
		t.Fatal("ClusterFirst on the host network is Default")
	}
	host.DNSPolicy = DNSClusterFirstWithHostNet
	if host.EffectiveDNSPolicy() != DNSClusterFirst {
		t.Fatal("ClusterFirstWithHostNet is ClusterFirst")
	}
}

// A multi-service application written as public ones are (hardened
// pods, ServiceAccounts, gRPC/TCP/HTTP probes, ports by name, a
// ConfigMap, a headless and a LoadBalancer Service) validates as a
// directory and file by file; what is only served differently is a
// warning, never a refusal.
func TestShopAppValidates(t *testing.T) {
	files, err := ReadDir("testdata/apps/shop")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Workloads) != 3 || len(set.Services) != 5 || len(set.ServiceAccounts) != 2 || len(set.ConfigMaps) != 1 {
		t.Fatalf("workloads %d services %d accounts %d configmaps %d", len(set.Workloads), len(set.Services), len(set.ServiceAccounts), len(set.ConfigMaps))
	}
	for _, f := range files {
		if _, err := Load([]File{f}); err != nil {
			t.Errorf("%s on its own: %v", f.Path, err)
		}
	}
	web, _ := set.Workload(Ref{Namespace: "default", Kind: "Deployment", Name: "web"})
	if web.MissingServiceAccount != "" || len(web.ConfigMaps) != 1 {
		t.Fatalf("web: account %q configmaps %v", web.MissingServiceAccount, web.ConfigMaps)
	}
}

// Fields real node agents and charts carry: host namespaces, mount
// propagation, os, built-in priority classes (priority 2000001000, no
// warning) and bounded NoExecute tolerations.
func TestRealWorldPodFields(t *testing.T) {
	ds := func(spec, mount string) string {
		return `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: exporter}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec:
` + spec + `      containers:
      - name: exporter
        image: busybox
        volumeMounts: [{name: root, mountPath: /host/root, readOnly: true` + mount + `}]
      volumes: [{name: root, hostPath: {path: /}}]
`
	}
	set, probs := load(t, "ds.yaml", ds(`      hostPID: true
      hostIPC: true
      os: {name: linux}
      priorityClassName: system-node-critical
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      - {key: dedicated, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
`, ", mountPropagation: HostToContainer"))
	if probs != nil {
		t.Fatal(probs)
	}
	s := set.Workloads[0].Template.Spec
	if !s.HostPID || !s.HostIPC || s.Containers[0].VolumeMounts[0].MountPropagation != "HostToContainer" {
		t.Fatalf("%+v", s)
	}
	shared, sprobs := load(t, "ds.yaml", ds("      shareProcessNamespace: true\n", ""))
	if sprobs != nil || !*shared.Workloads[0].Template.Spec.ShareProcessNamespace {
		t.Fatalf("shareProcessNamespace: %v", sprobs)
	}
	w := strings.Join(warnings(set), "\n")
	if set.Workloads[0].Priority != 2000001000 || strings.Contains(w, "priorityClassName") ||
		strings.Contains(w, "tolerationSeconds") || strings.Contains(w, "tolerations[0]") {
		t.Fatalf("warnings:\n%s", w)
	}
	for _, tc := range []struct{ spec, mount, want string }{
		{"      os: {name: plan9}\n", "", "spec.template.spec.os.name: \"plan9\": must be linux or windows"},
		{"", ", mountPropagation: Bidirectional", "Bidirectional mount propagation is available only to privileged containers"},
		{"", ", mountPropagation: Shared", "must be None, HostToContainer or Bidirectional"},
		{"      tolerations: [{key: k, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]\n", "", "tolerations[0].effect: \"NoSchedule\": must be NoExecute when tolerationSeconds is set"},
		{"      hostPID: true\n      shareProcessNamespace: true\n", "", "ds.yaml:10: spec.template.spec.shareProcessNamespace: cannot be true with hostPID"},
	} {
		_, probs := load(t, "ds.yaml", ds(tc.spec, tc.mount))
		if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
			t.Errorf("want %q in %q", tc.want, probs)
		}
	}
}

func TestImagePullSecrets(t *testing.T) {
	p := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  imagePullSecrets: [{name: regcred}]\n  containers: [{name: a, image: registry.example.com/a:1}]\n"
	set, probs := load(t, "p.yaml", p)
	if probs != nil {
		t.Fatal(probs)
	}
	if w := strings.Join(warnings(set), "\n"); !strings.Contains(w, `p.yaml:5: spec.imagePullSecrets[0].name: "regcred": Secret not found in namespace default of this commit: the pod's images are pulled without it`) {
		t.Fatalf("missing pull secret: %s", w)
	}
	sec := "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: e30=}\n"
	set, probs = load(t, "p.yaml", p, "s.yaml", sec)
	if probs != nil {
		t.Fatal(probs)
	}
	if _, ok := set.Workloads[0].Secrets["regcred"]; !ok {
		t.Fatal("the pull secret must reach the replica (and its hash)")
	}
	if w := strings.Join(warnings(set), "\n"); strings.Contains(w, "imagePullSecrets") {
		t.Fatalf("a present pull secret is no warning: %s", w)
	}
}

// generateName gives a Job or Pod a name from its content: the same
// content the same name (an unrelated commit does not run it again),
// another content another name (a new run); other kinds are refused.
func TestGenerateName(t *testing.T) {
	job := func(cmd string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox, command: [" + cmd + "]}]\n"
	}
	name := func(docs ...string) string {
		t.Helper()
		var files []string
		for i, d := range docs {
			files = append(files, fmt.Sprintf("f%d.yaml", i), d)
		}
		set, probs := load(t, files...)
		if probs != nil {
			t.Fatal(probs)
		}
		return set.Workloads[0].Name
	}
	a := name(job("up"))
	if !strings.HasPrefix(a, "migrate-") || len(a) != len("migrate-")+5 {
		t.Fatalf("generated name %q", a)
	}
	other := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\ndata: {a: b}\n"
	if b := name(job("up"), other); b != a {
		t.Fatalf("an unrelated document changed the name: %q → %q", a, b)
	}
	if c := name(job("down")); c == a {
		t.Fatal("another content must give another name")
	}
	_, probs := load(t, "d.yaml", strings.Replace(strings.Replace(job("up"), "kind: Job", "kind: Deployment", 1), "batch/v1", "apps/v1", 1))
	if !strings.Contains(strings.Join(probs, "\n"), "only Jobs and Pods may have a generated name") {
		t.Fatalf("%q", probs)
	}
}
