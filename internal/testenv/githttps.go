package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CA is a certificate authority a test makes: it signs server
// certificates for loopback.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	PEMFile string // the CA certificate, for --ca-file
}

// NewCA makes a CA and writes its certificate to a file.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, PEMFile: file}
}

// Issue writes a server certificate for ip and its key into dir.
func (ca *CA) Issue(t testing.TB, dir string, ip net.IP) (certFile, keyFile string) {
	t.Helper()
	return ca.issue(t, dir, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: ip.String()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{ip},
	})
}

// IssueClient writes a client certificate for name (mutual TLS) and its
// key into dir.
func (ca *CA) IssueClient(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return ca.issue(t, dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(t testing.TB, dir, file string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, file+".pem"), filepath.Join(dir, file+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// HTTPSGit is a real smart-HTTP Git host: nginx with TLS in front of
// fcgiwrap and git http-backend, every request behind basic auth, as a
// company's Git server is.
type HTTPSGit struct {
	URL string // https://127.0.0.1:PORT
	// MTLSURL serves the same repositories to clients that show a
	// certificate of the CA (mutual TLS), without basic auth.
	MTLSURL string
	Users   map[string]string
	Access  string // nginx's access log: one line per request
	dir     string
	ca      *CA
	nginx   *exec.Cmd
	fcgi    *exec.Cmd
}

// StartHTTPSGit serves the repositories under base over HTTPS with a
// certificate of ca, for users (name → password), until the test ends.
func StartHTTPSGit(t testing.TB, base string, ca *CA, users map[string]string) *HTTPSGit {
	t.Helper()
	for _, bin := range []string{"/usr/sbin/nginx", "/usr/sbin/fcgiwrap", "/usr/lib/git-core/git-http-backend"} {
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (Debian's nginx, fcgiwrap and git packages)", bin)
			}
			t.Skipf("%s not found", bin)
		}
	}
	dir := t.TempDir()
	h := &HTTPSGit{Users: users, dir: dir, ca: ca, Access: filepath.Join(dir, "access.log")}
	var pw strings.Builder
	for u, p := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s\n", u, p)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fcgi.sock")
	h.fcgi = exec.Command("/usr/sbin/fcgiwrap", "-s", "unix:"+sock)
	h.fcgi.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.fcgi.Start(); err != nil {
		t.Fatalf("fcgiwrap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-h.fcgi.Process.Pid, syscall.SIGKILL); _ = h.fcgi.Wait() })
	addr, mtlsAddr := FreePort(t), FreePort(t)
	h.URL, h.MTLSURL = "https://"+addr, "https://"+mtlsAddr
	h.RotateCertificate(t)
	// One location for both servers: git http-backend, behind the
	// throttle switch; user is who the server authenticated.
	location := func(user string) string {
		return fmt.Sprintf(`    location / {
      if (-f %[1]s/throttle) {
        add_header Retry-After %[2]d always;
        return 429;
      }
      fastcgi_pass unix:%[3]s;
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT %[4]s;
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REMOTE_USER %[5]s;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param HTTP_GIT_PROTOCOL $http_git_protocol;
    }`, dir, ThrottleSeconds, sock, base, user)
	}
	conf := fmt.Sprintf(`daemon off;
user root;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  client_max_body_size 0;
  server {
    listen %[2]s ssl;
    ssl_certificate %[1]s/server.pem;
    ssl_certificate_key %[1]s/server.key;
    auth_basic "git";
    auth_basic_user_file %[1]s/htpasswd;
%[3]s
  }
  server {
    listen %[4]s ssl;
    ssl_certificate %[1]s/server.pem;
    ssl_certificate_key %[1]s/server.key;
    ssl_verify_client on;
    ssl_client_certificate %[5]s;
%[6]s
  }
}
`, dir, addr, location("$remote_user"), mtlsAddr, ca.PEMFile, location("$ssl_client_s_dn"))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	h.nginx = exec.Command("/usr/sbin/nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	h.nginx.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	h.nginx.Stdout, h.nginx.Stderr = &out, &out
	if err := h.nginx.Start(); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-h.nginx.Process.Pid, syscall.SIGKILL); _ = h.nginx.Wait() })
	if !Listening(addr, 10*time.Second) || !Listening(mtlsAddr, 10*time.Second) {
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx did not listen on %s: %s %s", addr, out.String(), errLog)
	}
	return h
}

// ThrottleSeconds is the Retry-After of a throttled HTTPSGit.
const ThrottleSeconds = 10

// Throttle makes the host answer every request with 429 Too Many
// Requests and a Retry-After of ThrottleSeconds, until Throttle(false).
func (h *HTTPSGit) Throttle(t testing.TB, on bool) {
	t.Helper()
	f := filepath.Join(h.dir, "throttle")
	if !on {
		_ = os.Remove(f)
		return
	}
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// RotateCertificate gives the server a new certificate from the same CA
// (nginx reloads it on SIGHUP).
func (h *HTTPSGit) RotateCertificate(t testing.TB) {
	t.Helper()
	h.ca.Issue(t, h.dir, net.ParseIP("127.0.0.1"))
	if h.nginx != nil {
		if err := h.nginx.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Requests counts the requests in the access log whose line contains
// each of parts.
func (h *HTTPSGit) Requests(parts ...string) int {
	b, _ := os.ReadFile(h.Access)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			n++
		}
	}
	return n
}
