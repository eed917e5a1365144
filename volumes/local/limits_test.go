package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"driftless.dev/driftless/internal/testenv"
)

// requireLoop fails under CI (which runs as root on a machine with loop
// devices) and skips elsewhere when loop mounts cannot be made.
func requireLoop(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := os.Stat("/dev/loop-control"); err != nil {
		why = "no /dev/loop-control"
	}
	testenv.Require(t, "mkfs.ext4", "mount")
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("loop mounts unavailable: %s", why)
		}
		t.Skipf("loop mounts unavailable: %s", why)
	}
}

// With LimitLoop a claim is a file system of its size: writing past it
// fails with ENOSPC, what was written survives an unmount (a reboot) and
// a new Dirs, and Delete unmounts it and removes the image.
func TestLoopLimitEnforcesSize(t *testing.T) {
	requireLoop(t)
	root := t.TempDir()
	ledger := filepath.Join(t.TempDir(), "volumes.json")
	d, err := Open(root, ledger, Options{Limit: LimitLoop})
	if err != nil {
		t.Fatal(err)
	}
	b := localBinding("default/data")
	b.Storage = "16Mi"
	dir, err := d.Dir(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if total := int64(st.Blocks) * st.Bsize; total > 16<<20 || total < 8<<20 {
		t.Fatalf("the claim's file system holds %d bytes, want about 16Mi", total)
	}
	if err := os.WriteFile(filepath.Join(dir, "kept"), []byte("data that must survive"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 32<<20)
	err = os.WriteFile(filepath.Join(dir, "too-big"), big, 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 32Mi into a 16Mi claim: %v, want ENOSPC", err)
	}
	_ = os.Remove(filepath.Join(dir, "too-big"))

	// A reboot: not mounted any more; the next agent mounts it again.
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(root, ledger, Options{Limit: LimitLoop})
	if err != nil {
		t.Fatal(err)
	}
	dir2, err := d2.Dir(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir2, "kept")); err != nil || string(got) != "data that must survive" {
		t.Fatalf("after a remount: %q %v", got, err)
	}
	// A claim without a size stays a plain directory.
	plain := localBinding("default/plain")
	pdir, err := d2.Dir(plain)
	if err != nil || isMounted(pdir) {
		t.Fatalf("a claim without a size: %s mounted=%v %v", pdir, isMounted(pdir), err)
	}

	// The image gone: the data is missing, not re-created empty.
	if err := unix.Unmount(dir2, 0); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(root, imagePath(b.Path))
	if err := os.Rename(img, img+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Dir(b); err == nil || !strings.Contains(err.Error(), "data is missing") {
		t.Fatalf("a missing image: %v", err)
	}
	if err := os.Rename(img+".away", img); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Dir(b); err != nil {
		t.Fatal(err)
	}
	if err := d2.Delete(b); err != nil {
		t.Fatal(err)
	}
	if isMounted(dir2) {
		t.Fatal("still mounted after Delete")
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("image after Delete: %v", err)
	}
}
