package services

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
)

var cfg = Config{CIDR: netip.MustParsePrefix("10.96.0.0/24"), ClusterDNS: netip.MustParseAddr("10.96.0.10")}

func load(t *testing.T, docs string) *manifest.Set {
	t.Helper()
	set, err := manifest.Load([]manifest.File{{Path: "app.yaml", Data: []byte(docs)}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const app = `apiVersion: apps/v1
kind: Deployment
metadata: {name: backend}
spec:
  replicas: 3
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend, tier: api}}
    spec:
      containers:
      - name: app
        image: busybox
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers: [{name: app, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  type: NodePort
  selector: {app: backend}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9090, targetPort: metrics}
---
apiVersion: v1
kind: Service
metadata: {name: backend-hl}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: backend}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: fixed}
spec:
  clusterIP: 10.96.0.50
  selector: {app: nothing}
  ports: [{port: 80}]
`

func row(i int, node, ip string, ready bool) manifest.ReplicaPlacement {
	return manifest.ReplicaPlacement{Index: i, Node: node, Status: &manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: ready, PodIP: ip}}
}

func input(set *manifest.Set, prev map[manifest.Ref]Record, alive ...string) Input {
	pl := map[manifest.Ref]manifest.Placement{
		{Namespace: "default", Kind: "Deployment", Name: "backend"}: {Replicas: []manifest.ReplicaPlacement{
			row(0, "n1", "10.88.1.5", true), row(1, "n2", "10.88.2.5", false), row(2, "n3", "10.88.3.5", true),
		}},
	}
	return Input{Config: cfg, Services: set.Services, Workloads: set.Workloads, Placements: pl, Previous: prev,
		Alive: func(n string) bool {
			for _, a := range alive {
				if a == n {
					return true
				}
			}
			return false
		}}
}

func ref(name string) manifest.Ref {
	return manifest.Ref{Namespace: "default", Kind: "Service", Name: name}
}

func TestComputeAddressesAndEndpoints(t *testing.T) {
	set := load(t, app)
	got := Compute(input(set, nil, "n1", "n2"))
	b := got[ref("backend")]
	ip, err := netip.ParseAddr(b.ClusterIP)
	if err != nil || !cfg.CIDR.Contains(ip) || ip == cfg.ClusterDNS {
		t.Fatalf("clusterIP %q", b.ClusterIP)
	}
	// n3 is not alive, n2's replica is not ready: only n1's.
	if len(b.Endpoints) != 1 || b.Endpoints[0].IP != "10.88.1.5" || fmt.Sprint(b.Endpoints[0].Ports) != "[8080 0]" {
		t.Fatalf("endpoints %+v", b.Endpoints)
	}
	for _, p := range b.Ports {
		if p.NodePort < manifest.NodePortMin || p.NodePort > manifest.NodePortMax {
			t.Fatalf("node port %d", p.NodePort)
		}
	}
	if b.Ports[0].NodePort == b.Ports[1].NodePort {
		t.Fatal("two ports of one Service share a node port")
	}
	hl := got[ref("backend-hl")]
	if hl.ClusterIP != manifest.ClusterIPNone || len(hl.Endpoints) != 2 || hl.Endpoints[1].Ready {
		t.Fatalf("headless with not-ready addresses: %+v", hl)
	}
	if f := got[ref("fixed")]; f.ClusterIP != "10.96.0.50" || len(f.Endpoints) != 0 || f.Endpoints == nil {
		t.Fatalf("fixed: %+v", f)
	}

	// Kept across calls (a new leader reads them back), whatever else
	// changes; a Service whose clusterIP is now asked elsewhere keeps it.
	again := Compute(input(set, got, "n1", "n2", "n3"))
	if again[ref("backend")].ClusterIP != b.ClusterIP || again[ref("backend")].Ports[0].NodePort != b.Ports[0].NodePort {
		t.Fatalf("allocation moved: %+v → %+v", b, again[ref("backend")])
	}
	if n := len(again[ref("backend")].Endpoints); n != 2 {
		t.Fatalf("n3 alive again: want 2 endpoints, got %d", n)
	}
}

func TestComputeConflictsAndRange(t *testing.T) {
	set := load(t, app)
	// An explicit clusterIP outside the range, or taken by an earlier
	// allocation of another Service, is an error on that Service only.
	prev := map[manifest.Ref]Record{ref("squatter"): {ClusterIP: "10.96.0.50"}}
	sq := manifest.Service{Metadata: manifest.ObjectMeta{Name: "squatter", Namespace: "default"}, Spec: manifest.ServiceSpec{Type: manifest.ServiceClusterIP, Ports: []manifest.ServicePort{{Port: 1, Protocol: "TCP"}}}}
	in := input(set, prev, "n1")
	in.Services = append(in.Services, sq)
	got := Compute(in)
	if got[ref("squatter")].ClusterIP != "10.96.0.50" || !strings.Contains(got[ref("fixed")].Error, "allocated to Service default/Service/squatter") {
		t.Fatalf("squatter %+v fixed %+v", got[ref("squatter")], got[ref("fixed")])
	}
	out := manifest.Service{Metadata: manifest.ObjectMeta{Name: "out", Namespace: "default"}, Spec: manifest.ServiceSpec{Type: manifest.ServiceClusterIP, ClusterIP: "10.1.0.1"}}
	in.Services = append(in.Services, out)
	if e := Compute(in)[ref("out")].Error; !strings.Contains(e, "outside the service range") {
		t.Fatalf("error %q", e)
	}
	// A /28 has 16 addresses: 13 usable once the network, first,
	// broadcast and DNS addresses are kept out.
	small := Config{CIDR: netip.MustParsePrefix("10.96.0.0/28"), ClusterDNS: netip.MustParseAddr("10.96.0.10")}
	var many []manifest.Service
	for i := range 14 {
		many = append(many, manifest.Service{Metadata: manifest.ObjectMeta{Name: fmt.Sprintf("s%02d", i), Namespace: "default"}, Spec: manifest.ServiceSpec{Type: manifest.ServiceClusterIP}})
	}
	res := Compute(Input{Config: small, Services: many})
	seen, full := map[string]bool{}, 0
	for _, r := range res {
		if r.Error != "" {
			full++
			continue
		}
		if seen[r.ClusterIP] || r.ClusterIP == "10.96.0.10" || r.ClusterIP == "10.96.0.0" || r.ClusterIP == "10.96.0.1" || r.ClusterIP == "10.96.0.15" {
			t.Fatalf("bad or duplicate address %s", r.ClusterIP)
		}
		seen[r.ClusterIP] = true
	}
	if len(seen) != 12 || full != 2 {
		t.Fatalf("allocated %d, full %d", len(seen), full)
	}
}

// Allocation does not depend on the order Services come in, nor does
// adding one move the others.
func TestComputeStableUnderAdditions(t *testing.T) {
	set := load(t, app)
	first := Compute(input(set, nil, "n1"))
	extra := manifest.Service{Metadata: manifest.ObjectMeta{Name: "aaa", Namespace: "default"}, Spec: manifest.ServiceSpec{Type: manifest.ServiceNodePort, Ports: []manifest.ServicePort{{Port: 1, Protocol: "TCP"}}}}
	in := input(set, first, "n1")
	in.Services = append([]manifest.Service{extra}, in.Services...)
	second := Compute(in)
	for k, r := range first {
		if second[k].ClusterIP != r.ClusterIP || fmt.Sprint(second[k].Ports) != fmt.Sprint(r.Ports) {
			t.Fatalf("%s moved: %+v → %+v", k, r, second[k])
		}
	}
}

func TestEnvVars(t *testing.T) {
	recs := []Record{
		{Service: ref("redis-primary"), Type: manifest.ServiceClusterIP, ClusterIP: "10.96.0.11",
			Ports: []Port{{Name: "redis", Protocol: "TCP", Port: 6379}, {Name: "metrics", Protocol: "UDP", Port: 9121}}},
		{Service: ref("headless"), Type: manifest.ServiceClusterIP, ClusterIP: manifest.ClusterIPNone, Ports: []Port{{Protocol: "TCP", Port: 1}}},
		{Service: manifest.Ref{Namespace: "other", Kind: "Service", Name: "x"}, ClusterIP: "10.96.0.12", Ports: []Port{{Protocol: "TCP", Port: 1}}},
	}
	got := map[string]string{}
	for _, kv := range EnvVars(recs, "default") {
		got[kv[0]] = kv[1]
	}
	want := map[string]string{
		"REDIS_PRIMARY_SERVICE_HOST": "10.96.0.11", "REDIS_PRIMARY_SERVICE_PORT": "6379",
		"REDIS_PRIMARY_SERVICE_PORT_REDIS": "6379", "REDIS_PRIMARY_SERVICE_PORT_METRICS": "9121",
		"REDIS_PRIMARY_PORT": "tcp://10.96.0.11:6379", "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.96.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp", "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379", "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.96.0.11",
		"REDIS_PRIMARY_PORT_9121_UDP": "udp://10.96.0.11:9121",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "HEADLESS") || strings.HasPrefix(k, "X_") {
			t.Errorf("%s: headless Services and other namespaces give no variables", k)
		}
	}
}

// Equal sees a change in any field (a field added to Record or Endpoint
// must be added to Equal: this test counts them).
func TestRecordEqual(t *testing.T) {
	base := Record{Service: ref("a"), Type: "ClusterIP", ClusterIP: "10.96.0.1", Ports: []Port{{Name: "p", Protocol: "TCP", Port: 1, TargetPort: "1"}},
		Endpoints: []Endpoint{{IP: "10.244.0.1", Node: "n", Replica: "Deployment/a/0", Ready: true, Ports: []int32{1}}}}
	if n, m := reflect.TypeOf(Record{}).NumField(), reflect.TypeOf(Endpoint{}).NumField(); n != 9 || m != 7 {
		t.Fatalf("Record has %d fields, Endpoint %d: update Equal and this test", n, m)
	}
	clone := func() Record {
		c := base
		c.Ports = append([]Port(nil), base.Ports...)
		c.Endpoints = append([]Endpoint(nil), base.Endpoints...)
		c.Endpoints[0].Ports = append([]int32(nil), base.Endpoints[0].Ports...)
		return c
	}
	if !base.Equal(clone()) {
		t.Fatal("a copy must be equal")
	}
	for name, change := range map[string]func(*Record){
		"service": func(r *Record) { r.Service.Name = "b" }, "type": func(r *Record) { r.Type = "NodePort" },
		"clusterIP": func(r *Record) { r.ClusterIP = "10.96.0.2" }, "externalName": func(r *Record) { r.ExternalName = "x" },
		"affinity": func(r *Record) { r.SessionAffinity = "ClientIP" }, "affinitySeconds": func(r *Record) { r.AffinitySeconds = 5 },
		"error": func(r *Record) { r.Error = "full" }, "ports": func(r *Record) { r.Ports[0].NodePort = 30001 },
		"endpoint ip": func(r *Record) { r.Endpoints[0].IP = "10.244.0.2" }, "endpoint node": func(r *Record) { r.Endpoints[0].Node = "m" },
		"endpoint replica": func(r *Record) { r.Endpoints[0].Replica = "x" }, "endpoint hostname": func(r *Record) { r.Endpoints[0].Hostname = "h" },
		"endpoint subdomain": func(r *Record) { r.Endpoints[0].Subdomain = "s" }, "endpoint ready": func(r *Record) { r.Endpoints[0].Ready = false },
		"endpoint ports": func(r *Record) { r.Endpoints[0].Ports[0] = 2 },
	} {
		c := clone()
		change(&c)
		if base.Equal(c) {
			t.Errorf("a change of %s is not seen", name)
		}
	}
}
