package testenv

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
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

// Ports handed out by FreePort come from below the kernel's ephemeral
// range (32768-60999 on Linux), chosen at random and never twice in one
// process: a port taken from the ephemeral range can be given to an
// outgoing connection of another test between the check and the bind.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns "127.0.0.1:PORT" with a TCP port free right now.
func FreePort(t testing.TB) string {
	t.Helper()
	return freePort(t, false)
}

// FreeGossipAddr returns "127.0.0.1:PORT" free for both TCP and UDP, as
// memberlist binds both on one port.
func FreeGossipAddr(t testing.TB) string {
	t.Helper()
	return freePort(t, true)
}

func freePort(t testing.TB, udp bool) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 200; i++ {
		p := portLow + rand.IntN(portHigh-portLow)
		if given[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				continue
			}
			u.Close()
		}
		given[p] = true
		return addr
	}
	t.Fatal("no free port")
	return ""
}
