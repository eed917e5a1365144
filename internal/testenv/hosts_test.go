package testenv

import "testing"

// Hosts reach each other and the gateway; a link down cuts one off and
// up heals it.
func TestLAN(t *testing.T) {
	Require(t, "busybox")
	l := NewLAN(t, "h", 2)
	a, b := l.Hosts[0], l.Hosts[1]
	ping := func(h *Host, ip string) error {
		return h.Command("busybox", "ping", "-c", "1", "-W", "1", ip).Run()
	}
	if err := ping(a, b.IP.String()); err != nil {
		t.Fatalf("%s cannot reach %s: %v", a.Name, b.IP, err)
	}
	if err := ping(b, l.Gateway.String()); err != nil {
		t.Fatalf("%s cannot reach the gateway: %v", b.Name, err)
	}
	b.LinkDown(t)
	if ping(a, b.IP.String()) == nil {
		t.Fatal("a host whose link is down still answers")
	}
	b.LinkUp(t)
	Eventually(t, "the link back up", 10e9, func() (bool, string) { return ping(a, b.IP.String()) == nil, "" })
}
