package testenv

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LAN is a set of hosts on one machine: each host a network namespace
// with an address of its own on a private subnet, joined by a bridge in
// this process's namespace (whose address, Gateway, is every host's
// default route and the address this process reaches them from).
type LAN struct {
	Bridge  string
	Subnet  netip.Prefix
	Gateway netip.Addr
	Hosts   []*Host
}

// Host is one network namespace on the LAN. Processes enter it with
// nsenter --net (ip netns exec would remount /sys and hide the cgroup
// mount from runc).
type Host struct {
	Name  string
	NetNS string // /run/netns/<name>
	IP    netip.Addr
	// Veth is the host's link on the bridge, in this namespace: down
	// partitions the host.
	Veth string
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// NewLAN makes n hosts named <prefix>1..n on a bridge of their own, on a
// random 10.213.x.0/24 subnet, and removes them when the test ends.
func NewLAN(t testing.TB, prefix string, n int) *LAN {
	t.Helper()
	RequireRoot(t)
	Require(t, "ip", "nsenter")
	id := fmt.Sprintf("%05x", rand.IntN(1<<20))
	x := 1 + rand.IntN(250)
	l := &LAN{
		Bridge:  "dlb" + id,
		Subnet:  netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", x)),
		Gateway: netip.MustParseAddr(fmt.Sprintf("10.213.%d.1", x)),
	}
	t.Cleanup(func() { l.remove() })
	ipCmd(t, "link", "add", l.Bridge, "type", "bridge")
	ipCmd(t, "addr", "add", l.Gateway.String()+"/24", "dev", l.Bridge)
	ipCmd(t, "link", "set", l.Bridge, "up")
	for i := 1; i <= n; i++ {
		h := &Host{
			Name: fmt.Sprintf("%s%d", prefix, i),
			IP:   netip.MustParseAddr(fmt.Sprintf("10.213.%d.%d", x, 10+i)),
			Veth: fmt.Sprintf("dlv%s%d", id, i),
		}
		ns := "dl-" + id + "-" + h.Name
		h.NetNS = filepath.Join("/run/netns", ns)
		l.Hosts = append(l.Hosts, h)
		ipCmd(t, "netns", "add", ns)
		ipCmd(t, "link", "add", h.Veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipCmd(t, "link", "set", h.Veth, "master", l.Bridge)
		ipCmd(t, "link", "set", h.Veth, "up")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", ns, "addr", "add", h.IP.String()+"/24", "dev", "eth0")
		ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", ns, "route", "add", "default", "via", l.Gateway.String())
		if out, err := h.Command("sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
			t.Fatalf("%s: ip_forward: %v %s", h.Name, err, out)
		}
	}
	return l
}

// Command runs a program inside the host's network namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + h.NetNS, name}, args...)...)
}

// LinkDown cuts the host off the LAN (a partition); LinkUp heals it.
func (h *Host) LinkDown(t testing.TB) { t.Helper(); ipCmd(t, "link", "set", h.Veth, "down") }

// LinkUp puts the host back on the LAN.
func (h *Host) LinkUp(t testing.TB) { t.Helper(); ipCmd(t, "link", "set", h.Veth, "up") }

func (l *LAN) remove() {
	for _, h := range l.Hosts {
		// Processes still inside keep the namespace alive; the name goes.
		_ = exec.Command("ip", "netns", "del", filepath.Base(h.NetNS)).Run()
		_ = exec.Command("ip", "link", "del", h.Veth).Run()
	}
	_ = exec.Command("ip", "link", "del", l.Bridge).Run()
}
