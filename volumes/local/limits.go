package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"
)

// LimitLoop makes each claim with a size a file system of its own: an
// ext4 image file of the requested size under the volumes directory,
// loop-mounted on the claim's directory, so that writes past the size
// fail (ENOSPC) whatever the volumes directory's file system can do.
// The image is sparse: it takes on disk what is written.
const LimitLoop = "loop"

// imagesDir holds the claims' images, inside the volumes directory.
const imagesDir = ".images"

// mountTimeout bounds mkfs and mount of one image.
const mountTimeout = 30 * time.Second

// sizeOf is a binding's requested size in bytes (0: none).
func sizeOf(storage string) (int64, error) {
	if storage == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(storage)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", storage, err)
	}
	return q.Value(), nil
}

// imagePath is the image file of a claim directory (relative to root).
func imagePath(rel string) string {
	return filepath.Join(imagesDir, strings.ReplaceAll(filepath.ToSlash(rel), "/", "_")+".ext4")
}

// makeImage creates the sparse image of size bytes and an ext4 file
// system in it (no reserved blocks: the claim gets all of its size).
func makeImage(ctx context.Context, path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1", path).CombinedOutput()
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isMounted reports whether dir is a mount point.
func isMounted(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// mountImage loop-mounts image on dir (made if missing); nothing when it
// is mounted there already.
func mountImage(ctx context.Context, image, dir string) error {
	if isMounted(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "mount", "-t", "ext4", "-o", "loop,nosuid,nodev", image, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount %s: %v: %s", image, err, strings.TrimSpace(string(out)))
	}
	// As local-path provisioners do: any user of the replica may write.
	return os.Chmod(dir, 0o777)
}

// unmountImage unmounts dir (the loop device goes with it) and removes
// the image.
func unmountImage(dir, image string) error {
	if isMounted(dir) {
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	if err := os.Remove(image); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
