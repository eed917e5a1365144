package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// CNINet is a CNI bridge network of a test's own: a bridge name and a
// subnet no other test process uses, and a state dir (addresses, cached
// results) in a temp dir.
type CNINet struct {
	Name     string // network name, also the bridge's
	Bridge   string
	CIDR     string // a /24
	StateDir string
	BinDir   string
}

// CNIBinDirs are where the plugins are looked for, upstream's first.
var CNIBinDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}

// RequireCNI returns the directory of the CNI plugins (bridge,
// host-local, portmap) and checks that iptables is there; it fails under
// CI=true, else skips, when they are missing.
func RequireCNI(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	Require(t, "iptables", "iptables-save", "ip")
	for _, d := range CNIBinDirs {
		ok := true
		for _, p := range []string{"bridge", "host-local", "portmap"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	msg := fmt.Sprintf("CNI plugins (bridge, host-local, portmap) not found in %v: install containernetworking-plugins", CNIBinDirs)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// NewCNINet returns a network of this test process's own and removes, when
// the test ends, its bridge and every iptables rule and chain the plugins
// made for it (what a missed DEL would leave).
func NewCNINet(t testing.TB) CNINet {
	t.Helper()
	bin := RequireCNI(t)
	pid := os.Getpid()
	n := CNINet{
		Name:     fmt.Sprintf("dl-t%d", pid),
		CIDR:     fmt.Sprintf("10.%d.%d.0/24", 200+pid%50, (pid/50)%256),
		StateDir: t.TempDir(),
		BinDir:   bin,
	}
	n.Bridge = n.Name
	CleanupCNINet(n.Name, n.Bridge)
	t.Cleanup(func() { CleanupCNINet(n.Name, n.Bridge) })
	return n
}

var jumpRe = regexp.MustCompile(`-j (CNI-[A-Za-z0-9-]+)`)

// CleanupCNINet deletes a bridge and the nat rules whose comment names
// the network (bridge's masquerade, portmap's DNAT), with the per-replica
// chains they jump to. The shared CNI-HOSTPORT-* chains are left.
func CleanupCNINet(name, bridge string) {
	_ = exec.Command("ip", "link", "del", bridge).Run()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return
	}
	mark := fmt.Sprintf(`name: \"%s\"`, name)
	chains := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, mark) {
			continue
		}
		if m := jumpRe.FindStringSubmatch(line); m != nil && !strings.HasPrefix(m[1], "CNI-HOSTPORT-") {
			chains[m[1]] = true
		}
		_ = exec.Command("sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(line, "-A ")).Run()
	}
	for c := range chains {
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
	}
}

// NatRulesOf returns the nat rules whose comment names the network and,
// when id is not empty, the replica id.
func NatRulesOf(t testing.TB, name, id string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, fmt.Sprintf(`name: \"%s\"`, name)) && (id == "" || strings.Contains(line, fmt.Sprintf(`id: \"%s\"`, id))) {
			rules = append(rules, line)
		}
	}
	return rules
}

// ProcessCNINet is a network for a whole test process (agents started
// by end-to-end tests), in a subnet apart from NewCNINet's; the caller
// removes it at exit with CleanupCNINet and removes dir.
func ProcessCNINet(dir string) CNINet {
	pid := os.Getpid()
	n := CNINet{
		Name:     fmt.Sprintf("dl-e%d", pid),
		CIDR:     fmt.Sprintf("10.%d.%d.0/24", 150+pid%50, (pid/50)%256),
		StateDir: filepath.Join(dir, "state"),
	}
	n.Bridge = n.Name
	for _, d := range CNIBinDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			n.BinDir = d
			break
		}
	}
	return n
}

// WriteConfDir writes the network as a conflist (bridge with NAT,
// host-local addresses kept in StateDir, portmap) into dir, for an
// agent's --cni-conf-dir.
func (n CNINet) WriteConfDir(dir string) error {
	conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
]}
`, n.Name, n.Bridge, n.CIDR, filepath.Join(n.StateDir, "networks"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "10-test.conflist"), []byte(conf), 0o644)
}
