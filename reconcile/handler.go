package reconcile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"driftless.dev/driftless/manifest"
)

// target is where a probe or hook acts: the container (exec) and its
// replica's network namespace (network handlers dial 127.0.0.1 there, or
// on the host with hostNetwork).
type target struct {
	ID        string
	NetNS     string // "" for the host's
	Container manifest.Container
	Exec      Execer
}

// runHandler runs one check and says whether it passed, with a short
// reason when not. It never panics on a dead target: a refused
// connection is a failure like any other. ctx bounds it (timeoutSeconds).
func runHandler(ctx context.Context, t target, h manifest.ProbeHandler) (bool, string) {
	switch {
	case h.Exec != nil:
		if t.Exec == nil {
			return false, "exec not supported by the runtime"
		}
		code, out, err := t.Exec.Exec(ctx, t.ID, h.Exec.Command)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return false, "command timed out"
			}
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command exited %d: %s", code, firstLine(out))
		}
		return true, ""
	case h.HTTPGet != nil:
		return httpGet(ctx, t, h.HTTPGet)
	case h.TCPSocket != nil:
		port, ok := t.Container.PortNumber(h.TCPSocket.Port)
		if !ok {
			return false, fmt.Sprintf("no port named %q", h.TCPSocket.Port.StrVal)
		}
		conn, err := DialInNetNS(ctx, t.NetNS, "tcp", hostPort(h.TCPSocket.Host, port))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case h.GRPC != nil:
		return grpcHealth(ctx, t, h.GRPC)
	}
	return false, "no handler"
}

func hostPort(host string, port int32) string {
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// httpGet is the kubelet's HTTP check: a status in [200, 400) passes;
// HTTPS certificates are not verified.
func httpGet(ctx context.Context, t target, a *manifest.HTTPGetAction) (bool, string) {
	port, ok := t.Container.PortNumber(a.Port)
	if !ok {
		return false, fmt.Sprintf("no port named %q", a.Port.StrVal)
	}
	scheme := strings.ToLower(a.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := a.Path
	if path == "" {
		path = "/"
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return DialInNetNS(ctx, t.NetNS, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet: probes do not check certificates
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+hostPort(a.Host, port)+path, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "driftless-probe")
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.CopyN(io.Discard, resp.Body, 10<<10)
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("HTTP status %d", resp.StatusCode)
	}
	return true, ""
}

// grpcHealth calls grpc.health.v1.Health/Check without TLS.
func grpcHealth(ctx context.Context, t target, a *manifest.GRPCAction) (bool, string) {
	conn, err := grpc.DialContext(ctx, "passthrough:///"+hostPort("", a.Port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return DialInNetNS(ctx, t.NetNS, "tcp", addr)
		}),
		grpc.WithUserAgent("driftless-probe"),
	)
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return false, err.Error()
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, "status " + resp.GetStatus().String()
	}
	return true, ""
}
