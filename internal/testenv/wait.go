package testenv

import (
	"net"
	"testing"
	"time"
)

// Eventually polls cond every 25 ms until it holds, failing the test
// after timeout with what it waited for and cond's last description.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Until is Eventually for a condition with nothing to say.
func Until(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	Eventually(t, what, timeout, func() (bool, string) { return cond(), "" })
}

// FreePort returns "127.0.0.1:PORT" with a TCP port free right now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreeGossipAddr returns "127.0.0.1:PORT" free for both TCP and UDP, as
// memberlist binds both on one port.
func FreeGossipAddr(t testing.TB) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		addr := FreePort(t)
		if u, err := net.ListenPacket("udp", addr); err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}
