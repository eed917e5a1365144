package reconcile

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("network namespaces need root (CI=true)")
		}
		tb.Skip("network namespaces need root")
	}
}

// BenchmarkNetNSCreateRemove is the cost of a replica's namespace.
func BenchmarkNetNSCreateRemove(b *testing.B) {
	requireRoot(b)
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := CreateNetNS(p); err != nil {
			b.Fatal(err)
		}
		if err := RemoveNetNS(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDialInNetNS is the cost of one tcpSocket probe against a
// listener inside a replica's namespace (a fresh OS thread per dial).
func BenchmarkDialInNetNS(b *testing.B) {
	requireRoot(b)
	p := filepath.Join(b.TempDir(), "ns")
	if err := CreateNetNS(p); err != nil {
		b.Fatal(err)
	}
	defer RemoveNetNS(p)
	var lis net.Listener
	if err := InNetNS(p, func() (err error) { lis, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		b.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := DialInNetNS(context.Background(), p, "tcp", lis.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// threadNetNS returns the network namespace of every thread of this
// process.
func threadNetNS(t *testing.T) map[string]bool {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, task := range tasks {
		if ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net")); err == nil {
			out[ns] = true
		}
	}
	return out
}

func TestNetNSIsolatedWithLoopback(t *testing.T) {
	requireRoot(t)
	own, _ := os.Readlink("/proc/self/ns/net")
	defer func() {
		// Every thread is back in the process's namespace: none was left
		// behind in a replica's.
		if got := threadNetNS(t); len(got) != 1 || !got[own] {
			t.Errorf("threads in namespaces %v, want only %s", got, own)
		}
	}()
	p := filepath.Join(t.TempDir(), "ns")
	if err := CreateNetNS(p); err != nil {
		t.Fatal(err)
	}
	defer RemoveNetNS(p)
	if err := CreateNetNS(p); err != nil {
		t.Fatalf("second create (adopt): %v", err)
	}
	// A listener in the namespace is not reachable from the host's.
	var lis net.Listener
	if err := InNetNS(p, func() (err error) { lis, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if c, err := net.Dial("tcp", lis.Addr().String()); err == nil {
		c.Close()
		t.Fatal("listener inside the namespace reachable from the host")
	}
	for i := 0; i < 50; i++ {
		c, err := DialInNetNS(context.Background(), p, "tcp", lis.Addr().String())
		if err != nil {
			t.Fatalf("dial inside the namespace (loopback up): %v", err)
		}
		c.Close()
	}
	if err := RemoveNetNS(p); err != nil {
		t.Fatal(err)
	}
	if IsNetNS(p) {
		t.Fatal("still mounted")
	}
}
