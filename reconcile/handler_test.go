package reconcile

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"driftless.dev/driftless/manifest"
)

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, c := range p {
		n = n*10 + int32(c-'0')
	}
	return n
}

func check(t *testing.T, h manifest.ProbeHandler, c manifest.Container) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return runHandler(ctx, target{ID: "x", Container: c}, h)
}

func TestHTTPGetHandler(t *testing.T) {
	var gotHost, gotHeader, gotUA string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotHeader, gotUA = r.Host, r.Header.Get("X-Check"), r.UserAgent()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			w.WriteHeader(503)
		}
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h) // self-signed: not verified, as the kubelet
	defer tlsSrv.Close()

	c := manifest.Container{Ports: []manifest.ContainerPort{{Name: "web", ContainerPort: portOf(t, plain.Listener.Addr().String())}}}
	get := func(path, scheme string, port manifest.IntOrString) manifest.ProbeHandler {
		return manifest.ProbeHandler{HTTPGet: &manifest.HTTPGetAction{Path: path, Port: port, Scheme: scheme,
			HTTPHeaders: []manifest.HTTPHeader{{Name: "X-Check", Value: "yes"}, {Name: "Host", Value: "svc.example"}}}}
	}
	named := manifest.IntOrString{IsString: true, StrVal: "web"}
	if ok, msg := check(t, get("/ok", "HTTP", named), c); !ok {
		t.Fatalf("200 by named port: %s", msg)
	}
	if gotHost != "svc.example" || gotHeader != "yes" || gotUA != "driftless-probe" {
		t.Fatalf("request: host %q header %q agent %q", gotHost, gotHeader, gotUA)
	}
	if ok, msg := check(t, get("/redirect", "HTTP", named), c); !ok {
		t.Fatalf("redirect: %s", msg)
	}
	if ok, msg := check(t, get("/fail", "HTTP", named), c); ok || !strings.Contains(msg, "503") {
		t.Fatalf("503: ok=%v %s", ok, msg)
	}
	tlsPort := manifest.IntOrString{IntVal: portOf(t, tlsSrv.Listener.Addr().String())}
	if ok, msg := check(t, get("/ok", "HTTPS", tlsPort), c); !ok {
		t.Fatalf("HTTPS with a self-signed certificate: %s", msg)
	}
	if ok, _ := check(t, get("/ok", "HTTP", manifest.IntOrString{IsString: true, StrVal: "nope"}), c); ok {
		t.Fatal("unknown named port passed")
	}
}

func TestTCPAndGRPCHandlers(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(t, lis.Addr().String())
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	c := manifest.Container{}
	if ok, msg := check(t, manifest.ProbeHandler{TCPSocket: &manifest.TCPSocketAction{Port: manifest.IntOrString{IntVal: p}}}, c); !ok {
		t.Fatalf("tcp: %s", msg)
	}
	svc := "db"
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
	if ok, msg := check(t, manifest.ProbeHandler{GRPC: &manifest.GRPCAction{Port: p, Service: &svc}}, c); !ok {
		t.Fatalf("grpc serving: %s", msg)
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	if ok, msg := check(t, manifest.ProbeHandler{GRPC: &manifest.GRPCAction{Port: p, Service: &svc}}, c); ok || !strings.Contains(msg, "NOT_SERVING") {
		t.Fatalf("grpc not serving: ok=%v %s", ok, msg)
	}

	// Nothing listens: a failure with a reason, not a crash or a hang.
	srv.Stop()
	start := time.Now()
	for _, h := range []manifest.ProbeHandler{
		{TCPSocket: &manifest.TCPSocketAction{Port: manifest.IntOrString{IntVal: p}}},
		{GRPC: &manifest.GRPCAction{Port: p}},
		{HTTPGet: &manifest.HTTPGetAction{Path: "/", Port: manifest.IntOrString{IntVal: p}, Scheme: "HTTP"}},
		{Exec: &manifest.ExecAction{Command: []string{"true"}}}, // no Execer
	} {
		if ok, msg := check(t, h, c); ok || msg == "" {
			t.Fatalf("%+v with nothing listening: ok=%v %q", h, ok, msg)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failing probes took %s", d)
	}
}
