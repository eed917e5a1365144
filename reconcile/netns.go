package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Network wires a replica's network namespace beyond loopback. Setup runs
// once the namespace exists, before the replica's first container is
// created, and again (after a Teardown) when the replica's host ports
// change or the agent finds a namespace it has no record of wiring;
// Teardown runs before the namespace is removed, also for a namespace
// left behind by an earlier agent, whose path may no longer be a
// namespace (after a reboot). Both must be idempotent. Setup returns the
// replica's IP address, "" when the network gives it none. Calls for
// different replicas may run concurrently.
type Network interface {
	Setup(ctx context.Context, a Attachment) (ip string, err error)
	Teardown(ctx context.Context, a Attachment) error
}

// Attachment is what a Network needs to wire one replica.
type Attachment struct {
	// ID names the replica to the network: stable across agent restarts
	// and unique on the host, even with several agents on one host.
	ID string
	// NSPath is the bind-mounted network namespace.
	NSPath string
	// Ports are the replica's ports that have a hostPort, to publish.
	Ports []PortMapping
}

// PortMapping publishes a replica's port on the host.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // "tcp", "udp" or "sctp"
	HostIP        string `json:"hostIP,omitempty"`
}

// LoopbackNetwork gives a replica loopback only: the namespace is created
// with lo up, so there is nothing more to do.
type LoopbackNetwork struct{}

// Setup does nothing.
func (LoopbackNetwork) Setup(context.Context, Attachment) (string, error) { return "", nil }

// Teardown does nothing.
func (LoopbackNetwork) Teardown(context.Context, Attachment) error { return nil }

// netnsDir holds one bind-mounted network namespace file per replica.
func (r *Reconciler) netnsDir() string { return filepath.Join(r.cfg.DataDir, "netns") }

// IsNetNS reports whether path is a mounted network namespace (and not
// the empty file a reboot leaves behind).
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// CreateNetNS makes a new network namespace with loopback up and
// bind-mounts it on path. An existing namespace at path is kept.
func CreateNetNS(path string) error {
	if IsNetNS(path) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		errc <- onThread(func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind mount netns: %w", err)
			}
			var host, made unix.Stat_t
			if err := unix.Stat("/proc/1/ns/net", &host); err == nil && unix.Stat(path, &made) == nil && host.Ino == made.Ino && host.Dev == made.Dev {
				return errors.New("new namespace is the host's")
			}
			return loopbackUp()
		})
	}()
	if err := <-errc; err != nil {
		_ = RemoveNetNS(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// RemoveNetNS unmounts and removes a namespace file. A missing file is
// not an error. Processes still inside keep the namespace alive.
func RemoveNetNS(path string) error {
	if IsNetNS(path) {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount netns %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// InNetNS runs f on an OS thread inside the network namespace at path
// (the caller's namespace when path is empty). Sockets made by f keep
// that namespace after it returns. The thread is discarded afterwards.
func InNetNS(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		errc <- onThread(func() error {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open netns %s: %w", path, err)
			}
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("enter netns %s: %w", path, err)
			}
			return f()
		})
	}()
	return <-errc
}

// onThread runs f locked to the current OS thread and then puts the
// thread back into the network namespace it had. If that fails the
// thread stays locked, so that the runtime discards it (or, for the main
// thread, never schedules on it again): no goroutine ever runs in a
// namespace it did not ask for.
func onThread(f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open own netns: %w", err)
	}
	defer unix.Close(orig)
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to own netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// DialInNetNS dials addr from inside the network namespace at path.
func DialInNetNS(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := InNetNS(path, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}
