package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: main
          image: busybox:1.36
          command: ["sh", "-c", "sleep 1000"]
          resources:
            limits: {memory: 64Mi, cpu: 250m}
`

// warnings are the warnings of set as strings (none for a nil set).
func warnings(set *Set) []string {
	if set == nil {
		return nil
	}
	var out []string
	for _, w := range set.Warnings {
		out = append(out, w.String())
	}
	return out
}

func load(t *testing.T, files ...string) (*Set, []string) {
	t.Helper()
	var fs []File
	for i := 0; i+1 < len(files); i += 2 {
		fs = append(fs, File{Path: files[i], Data: []byte(files[i+1])})
	}
	set, err := Load(fs)
	if err == nil {
		return set, nil
	}
	var perrs Errors
	if !errors.As(err, &perrs) {
		t.Fatalf("Load error is not Errors: %v", err)
	}
	var lines []string
	for _, p := range perrs {
		lines = append(lines, p.String())
	}
	return nil, lines
}

func TestDecodeErrorsNameFileLineField(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"typo", strings.Replace(goodDeployment, "          image:", "          imagee:", 1),
			[]string{"apps/web.yaml:15: spec.template.spec.containers[0].imagee: unknown field"}},
		{"bad name", strings.Replace(goodDeployment, "name: web", "name: Bad_Name", 1),
			[]string{`apps/web.yaml:4: metadata.name: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
		{"name and field problems together", strings.Replace(strings.Replace(goodDeployment, "name: web", "name: Bad_Name", 1), "replicas: 2", "replicas: two", 1),
			[]string{`apps/web.yaml:4: metadata.name: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`, `apps/web.yaml:6: spec.replicas: "two": must be an integer`}},
		{"case matters", strings.Replace(goodDeployment, "replicas:", "Replicas:", 1),
			[]string{"apps/web.yaml:6: spec.Replicas: unknown field"}},
		{"every unknown field", strings.Replace(strings.Replace(goodDeployment, "replicas:", "replicaz:", 1), "command:", "comand:", 1),
			[]string{"apps/web.yaml:6: spec.replicaz: unknown field", "apps/web.yaml:16: spec.template.spec.containers[0].comand: unknown field"}},
		{"unsupported", strings.Replace(goodDeployment, "          resources:", "          resizePolicy: []\n          resources:", 1),
			[]string{"apps/web.yaml:17: spec.template.spec.containers[0].resizePolicy: not supported by driftless yet"}},
		{"unsupported securityContext field", strings.Replace(goodDeployment, "          resources:", "          securityContext:\n            runAsUser: 1000\n            seLinuxOptions: {level: s0}\n          resources:", 1),
			[]string{"apps/web.yaml:19: spec.template.spec.containers[0].securityContext.seLinuxOptions: not supported by driftless yet"}},
		{"type", strings.Replace(goodDeployment, "replicas: 2", "replicas: two", 1),
			[]string{`apps/web.yaml:6: spec.replicas: "two": must be an integer`}},
		{"quantity", strings.Replace(goodDeployment, "memory: 64Mi", "memory: 64MB!", 1),
			[]string{`apps/web.yaml:18: spec.template.spec.containers[0].resources.limits.memory: "64MB!": must be a quantity (e.g. 500m, 128Mi)`}},
		{"selector", strings.Replace(goodDeployment, "labels: {app: web}", "labels: {app: other}", 1),
			[]string{"apps/web.yaml:11: spec.template.metadata.labels: must match spec.selector"}},
		{"syntax", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [\n",
			[]string{"apps/web.yaml:6: invalid YAML: did not find expected node content"}},
		{"restart policy", strings.Replace(goodDeployment, "      containers:", "      restartPolicy: Never\n      containers:", 1),
			[]string{`apps/web.yaml:13: spec.template.spec.restartPolicy: "Never": must be Always`}},
		{"unknown kind", "apiVersion: v1\nkind: Widget\nmetadata:\n  name: x\n",
			[]string{`apps/web.yaml:2: kind: "Widget": unknown kind`}},
		{"wrong apiVersion", strings.Replace(goodDeployment, "apps/v1", "extensions/v1beta1", 1),
			[]string{`apps/web.yaml:1: apiVersion: "extensions/v1beta1": Deployment must be apps/v1`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := load(t, "apps/web.yaml", tc.in)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestValidationRules(t *testing.T) {
	pod := func(spec string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n" + spec
	}
	cases := []struct{ name, in, want string }{
		{"dup container", pod("  containers:\n  - {name: a, image: x:1}\n  - {name: a, image: x:1}\n"), `spec.containers[1].name: "a": duplicate container name`},
		{"port range", pod("  containers:\n  - name: a\n    image: x:1\n    ports: [{containerPort: 70000}]\n"), `"70000": must be between 1 and 65535`},
		{"protocol", pod("  containers:\n  - name: a\n    image: x:1\n    ports: [{containerPort: 80, protocol: HTTP}]\n"), `"HTTP": must be TCP, UDP or SCTP`},
		{"dup host port", pod("  containers:\n  - name: a\n    image: x:1\n    ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81, hostPort: 8080}]\n"), `duplicate host port`},
		{"requests > limits", pod("  containers:\n  - name: a\n    image: x:1\n    resources: {limits: {cpu: 100m}, requests: {cpu: 200m}}\n"), `must be less than or equal to the cpu limit`},
		{"mount names volume", pod("  containers:\n  - name: a\n    image: x:1\n    volumeMounts: [{name: v, mountPath: /v}]\n"), `"v": no volume of that name in the pod`},
		{"relative mount", pod("  volumes: [{name: v, emptyDir: {}}]\n  containers:\n  - name: a\n    image: x:1\n    volumeMounts: [{name: v, mountPath: v}]\n"), `"v": must be an absolute path`},
		{"no volume source", pod("  volumes: [{name: v}]\n  containers:\n  - {name: a, image: x:1}\n"), `must specify a volume source`},
		{"hostPath relative", pod("  volumes: [{name: v, hostPath: {path: data}}]\n  containers:\n  - {name: a, image: x:1}\n"), `"data": must be an absolute path`},
		{"no image", pod("  containers:\n  - {name: a}\n"), `spec.containers[0].image: required`},
		{"env name", pod("  containers:\n  - name: a\n    image: x:1\n    env: [{name: 'A=B', value: x}]\n"), `a valid environment variable name must consist of`},
		{"label value", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: 'b c'}\n", `a valid label must be an empty string or consist of alphanumeric characters`},
		{"negative replicas", strings.Replace(goodDeployment, "replicas: 2", "replicas: -1", 1), `"-1": must be >= 0`},
		{"job restart", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x:1}]\n", `restartPolicy: required for a Job`},
		{"taint effect", "apiVersion: driftless.dev/v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  taints: [{key: k, effect: Sometimes}]\n", `"Sometimes": must be NoSchedule`},
		{"probe handler", pod("  containers:\n  - name: a\n    image: x:1\n    livenessProbe: {periodSeconds: 5}\n"), `spec.containers[0].livenessProbe: must specify one of exec, httpGet, tcpSocket and grpc`},
		{"two handlers", pod("  containers:\n  - name: a\n    image: x:1\n    readinessProbe: {exec: {command: [x]}, tcpSocket: {port: 80}}\n"), `may not specify more than one handler`},
		{"named probe port", pod("  containers:\n  - name: a\n    image: x:1\n    ports: [{name: web, containerPort: 80}]\n    readinessProbe: {httpGet: {port: http}}\n"), `readinessProbe.httpGet.port: "http": no port of that name in the container`},
		{"liveness success threshold", pod("  containers:\n  - name: a\n    image: x:1\n    livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}\n"), `livenessProbe.successThreshold: "2": must be 1`},
		{"probe scheme", pod("  containers:\n  - name: a\n    image: x:1\n    livenessProbe: {httpGet: {port: 80, scheme: FTP}}\n"), `"FTP": must be HTTP or HTTPS`},
		{"negative period", pod("  containers:\n  - name: a\n    image: x:1\n    livenessProbe: {tcpSocket: {port: 80}, periodSeconds: -1}\n"), `periodSeconds: "-1": must be >= 1`},
		{"hook handler", pod("  containers:\n  - name: a\n    image: x:1\n    lifecycle: {preStop: {}}\n"), `lifecycle.preStop: must specify exec or httpGet`},
		{"init probe", pod("  initContainers:\n  - name: i\n    image: x:1\n    readinessProbe: {exec: {command: [x]}}\n  containers:\n  - {name: a, image: x:1}\n"), `spec.initContainers[0].readinessProbe: may not be set for init containers without restartPolicy: Always`},
		{"app restartPolicy", pod("  containers:\n  - {name: a, image: x:1, restartPolicy: Always}\n"), `spec.containers[0].restartPolicy: only init containers may set restartPolicy`},
		{"init restartPolicy", pod("  initContainers:\n  - {name: i, image: x:1, restartPolicy: OnFailure}\n  containers:\n  - {name: a, image: x:1}\n"), `"OnFailure": must be Always (a sidecar) or unset`},
		{"init name clash", pod("  initContainers:\n  - {name: a, image: x:1}\n  containers:\n  - {name: a, image: x:1}\n"), `spec.containers[0].name: "a": duplicate container name`},
		{"nonroot uid 0", pod("  containers:\n  - name: a\n    image: x:1\n    securityContext: {runAsUser: 0, runAsNonRoot: true}\n"), `securityContext.runAsNonRoot: runAsUser 0 is root`},
		{"seccomp localhost", pod("  securityContext: {seccompProfile: {type: Localhost}}\n  containers:\n  - {name: a, image: x:1}\n"), `spec.securityContext.seccompProfile.type: "Localhost": not supported by driftless yet`},
		{"pod sysctls", pod("  securityContext: {sysctls: []}\n  containers:\n  - {name: a, image: x:1}\n"), `spec.securityContext.sysctls: not supported by driftless yet`},
		{"capability", pod("  containers:\n  - name: a\n    image: x:1\n    securityContext: {capabilities: {add: [net-admin]}}\n"), `capabilities.add[0]: "net-admin": must be ALL or a capability name`},
		{"privileged escalation", pod("  containers:\n  - name: a\n    image: x:1\n    securityContext: {privileged: true, allowPrivilegeEscalation: false}\n"), `cannot be false with privileged: true`},
		{"secret base64", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: 'not base64!'\n", `data.k: must be base64-encoded`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := load(t, "f.yaml", tc.in)
			if !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Fatalf("got %q, want a line containing %q", got, tc.want)
			}
		})
	}
}

func TestSecretValuesNeverInErrors(t *testing.T) {
	_, got := load(t, "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: 'hunter2-plaintext!'\nstringData:\n  n: 42\n")
	if len(got) == 0 {
		t.Fatal("expected problems")
	}
	for _, l := range got {
		if strings.Contains(l, "hunter2") || strings.Contains(l, "42") {
			t.Fatalf("secret value leaked into %q", l)
		}
	}
}

func TestEveryProblemOfACommit(t *testing.T) {
	_, got := load(t,
		"a.yaml", strings.Replace(goodDeployment, "image:", "imagee:", 1),
		"b.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad\nspec:\n  containers: [{name: a, image: x:1}]\n",
		"c.yaml", goodDeployment, // duplicate of a.yaml's web? a.yaml failed, so no duplicate reported
	)
	if len(got) < 2 || !strings.HasPrefix(got[0], "a.yaml:") || !strings.HasPrefix(got[len(got)-1], "b.yaml:") {
		t.Fatalf("problems of every file, sorted: %q", got)
	}
}

func TestDefaultsAndWorkloads(t *testing.T) {
	set, probs := load(t, "web.yaml", goodDeployment+`---
# a comment-only document follows
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ops}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: a, image: busybox}]
`, "kustomization.yaml", "resources: [web.yaml]\n")
	if probs != nil {
		t.Fatal(probs)
	}
	if len(set.Workloads) != 2 || len(set.Skipped) != 1 || len(set.Services) != 1 {
		t.Fatalf("workloads %+v services %+v skipped %+v", set.Workloads, set.Services, set.Skipped)
	}
	if sv := set.Services[0]; sv.Spec.Type != ServiceClusterIP || sv.Spec.Ports[0].Protocol != "TCP" || sv.Spec.Ports[0].Target().IntVal != 80 {
		t.Fatalf("service not defaulted: %+v", sv.Spec)
	}
	web, ok := set.Workload(Ref{Namespace: "default", Kind: "Deployment", Name: "web"})
	if !ok || web.Replicas != 2 || web.Line != 1 {
		t.Fatalf("web: %+v", web)
	}
	c := web.Template.Spec.Containers[0]
	if web.Template.Spec.RestartPolicy != "Always" || *web.Template.Spec.TerminationGracePeriodSeconds != 30 ||
		c.ImagePullPolicy != "IfNotPresent" || c.Resources.Requests["memory"] != c.Resources.Limits["memory"] {
		t.Fatalf("defaults: %+v", web.Template.Spec)
	}
	ds, ok := set.Workload(Ref{Namespace: "ops", Kind: "DaemonSet", Name: "agent"})
	if !ok || !ds.PerNode || ds.Template.Spec.Containers[0].ImagePullPolicy != "Always" || ds.Line != 27 {
		t.Fatalf("daemonset: %+v", ds)
	}
}

func TestSpecHash(t *testing.T) {
	a, _ := load(t, "a.yaml", goodDeployment)
	b, _ := load(t, "a.yaml", strings.Replace(goodDeployment, "replicas: 2", "replicas: 5", 1))
	c, _ := load(t, "a.yaml", strings.Replace(goodDeployment, "sleep 1000", "sleep 999", 1))
	// Map order in the source does not matter.
	d, _ := load(t, "a.yaml", strings.Replace(goodDeployment, "{memory: 64Mi, cpu: 250m}", "{cpu: 250m, memory: 64Mi}", 1))
	h := func(s *Set) string { return s.Workloads[0].SpecHash }
	if h(a) != h(b) || h(a) != h(d) || h(a) == h(c) || len(h(a)) != 10 {
		t.Fatalf("hashes: %s %s %s %s", h(a), h(b), h(c), h(d))
	}
}

func TestFlowStyleAndChart(t *testing.T) {
	set, probs := load(t,
		"flow.yaml", "---\n{\n  # comment\n  \"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"c\",},\n  \"data\": {\"a\": \"b\",},\n}\n",
		"chart/Chart.yaml", "name: x\nversion: 1\n",
		"chart/templates/dep.yaml", "{{ .Values.broken }}\n")
	if probs != nil {
		t.Fatal(probs)
	}
	if len(set.ConfigMaps) != 1 || len(set.Skipped) != 1 || !strings.Contains(set.Skipped[0].Reason, "Helm chart") {
		t.Fatalf("%+v", set)
	}
}

func BenchmarkLoad2000(b *testing.B) {
	files := make([]File, 0, 2000)
	for i := 0; i < 2000; i++ {
		var data string
		switch i % 3 {
		case 0:
			data = strings.Replace(goodDeployment, "name: web", fmt.Sprintf("name: web-%d", i), 1)
		case 1:
			data = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-%d\ndata:\n  a: b\n  c: d\n", i)
		default:
			data = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%d\nspec:\n  ports: [{port: 80}]\n", i)
		}
		files = append(files, File{Path: fmt.Sprintf("apps/f%04d.yaml", i), Data: []byte(data)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(files); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConfigReferences(t *testing.T) {
	pod := `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: a
      image: x:1
      env:
        - name: G
          valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}
        - name: O
          valueFrom: {secretKeyRef: {name: maybe, key: k, optional: true}}
      envFrom: [{secretRef: {name: sec}}]
  volumes:
    - name: v
      configMap: {name: cfg, items: [{key: greeting, path: g.txt}]}
`
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {greeting: " + v + "}\n"
	}
	sec := "apiVersion: v1\nkind: Secret\nmetadata: {name: sec}\nstringData: {password: x}\n"

	// A missing ConfigMap or Secret does not refuse the commit (the
	// replicas using it stay Pending): it is a warning.
	set, errs := load(t, "p.yaml", pod)
	if errs != nil {
		t.Fatalf("a missing reference refuses the commit: %q", errs)
	}
	pending := ": its replicas stay Pending (CreateContainerConfigError) until a commit adds it (mark it optional: true if it may be absent)"
	want := []string{
		`p.yaml:10: spec.containers[0].env[0].valueFrom.configMapKeyRef.name: "cfg": ConfigMap not found in namespace default of this commit` + pending,
		`p.yaml:13: spec.containers[0].envFrom[0].secretRef.name: "sec": Secret not found in namespace default of this commit` + pending,
		`p.yaml:16: spec.volumes[0].configMap.name: "cfg": ConfigMap not found in namespace default of this commit` + pending,
	}
	if got := warnings(set); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s", strings.Join(got, "\n"))
	}
	if len(set.Workloads) != 1 || len(set.Workloads[0].ConfigMaps)+len(set.Workloads[0].Secrets) != 0 {
		t.Fatalf("workloads: %+v", set.Workloads)
	}
	missingHash := set.Workloads[0].SpecHash
	set, errs = load(t, "p.yaml", strings.Replace(pod, "key: greeting}}", "key: nope}}", 1), "c.yaml", cm("hi"), "s.yaml", sec)
	if got := warnings(set); errs != nil || len(got) != 2 || !strings.Contains(got[0], `"nope": no such key in ConfigMap cfg: its replicas stay Pending`) {
		t.Fatalf("missing key: %q %q", errs, got)
	}
	a, _ := load(t, "p.yaml", pod, "c.yaml", cm("hi"), "s.yaml", sec)
	b, _ := load(t, "p.yaml", pod, "c.yaml", cm("bye"), "s.yaml", sec)
	if a == nil || b == nil || a.Workloads[0].SpecHash == b.Workloads[0].SpecHash {
		t.Fatal("a ConfigMap change must change the spec hash of the workloads using it")
	}
	if a.Workloads[0].SpecHash == missingHash {
		t.Fatal("adding a missing ConfigMap must change the spec hash of the workloads using it")
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0].String(), "Secret default/sec is stored in plain text") {
		t.Fatalf("warnings with every reference present: %v", a.Warnings)
	}
	if len(a.Workloads[0].ConfigMaps) != 1 || len(a.Workloads[0].Secrets) != 1 {
		t.Fatalf("refs: %+v", a.Workloads[0])
	}
}
