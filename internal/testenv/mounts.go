package testenv

import (
	"os"
	"strings"
)

// OnTmpfs reports whether path p lies below a tmpfs mount point.
func OnTmpfs(p string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "tmpfs" && strings.HasPrefix(p, f[1]+"/") {
			return true
		}
	}
	return false
}
