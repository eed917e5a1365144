package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHGit is a real OpenSSH server on loopback serving Git as root, with
// a host key and an authorized deploy key of its own.
type SSHGit struct {
	Addr string // 127.0.0.1:PORT
	// HostKey is the server's public host key line, KnownHosts a
	// known_hosts file naming it for Addr.
	HostKey, KnownHosts string
	// Key is the authorized deploy key (no passphrase); EncryptedKey the
	// same kind of key encrypted with Passphrase, also authorized.
	Key, EncryptedKey, Passphrase string
	Log                           string // sshd's log
	dir                           string
	cmd                           *exec.Cmd
}

// URL is the ssh:// URL of the repository at path on the server.
func (s *SSHGit) URL(path string) string { return "ssh://root@" + s.Addr + path }

func keygen(t testing.TB, file, passphrase string) string {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", filepath.Base(file), "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// KnownHostsFor writes a known_hosts file naming key for addr.
func KnownHostsFor(t testing.TB, addr, key string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	fields := strings.Fields(key)
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("[%s]:%s %s %s\n", host, port, fields[0], fields[1])), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// StartSSHGit starts sshd on a free loopback port until the test ends.
func StartSSHGit(t testing.TB) *SSHGit {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("/usr/sbin/sshd not found (Debian's openssh-server)")
		}
		t.Skip("/usr/sbin/sshd not found")
	}
	Require(t, "ssh-keygen", "git")
	dir := t.TempDir()
	s := &SSHGit{dir: dir, Log: filepath.Join(dir, "sshd.log"), Passphrase: "correct horse battery"}
	s.HostKey = keygen(t, filepath.Join(dir, "host_key"), "")
	s.Key = filepath.Join(dir, "deploy_key")
	s.EncryptedKey = filepath.Join(dir, "encrypted_key")
	auth := keygen(t, s.Key, "") + "\n" + keygen(t, s.EncryptedKey, s.Passphrase) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd wants its privilege separation directory.
	_ = os.MkdirAll("/run/sshd", 0o755)
	s.Addr = FreePort(t)
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s/host_key
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
LogLevel VERBOSE
`, port, dir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-f", filepath.Join(dir, "sshd_config"), "-E", s.Log)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); _ = s.cmd.Wait() })
	s.KnownHosts = KnownHostsFor(t, s.Addr, s.HostKey)
	if !Listening(s.Addr, 10*time.Second) {
		log, _ := os.ReadFile(s.Log)
		t.Fatalf("sshd did not listen on %s: %s", s.Addr, log)
	}
	return s
}

// Connections counts the accepted logins in sshd's log.
func (s *SSHGit) Connections() int {
	b, _ := os.ReadFile(s.Log)
	return strings.Count(string(b), "Accepted publickey")
}
