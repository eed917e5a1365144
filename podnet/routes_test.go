package podnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"driftless.dev/driftless/internal/testenv"
	"driftless.dev/driftless/reconcile"
)

// Real routes in a namespace of its own: added, replaced when a node's
// address changes, removed when it leaves; a route not driftless's is
// never touched.
func TestSyncRoutes(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, "ip")
	path := filepath.Join(t.TempDir(), "ns")
	if err := reconcile.CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reconcile.RemoveNetNS(path) })
	ctx := context.Background()
	err := reconcile.InNetNS(path, func() error {
		for _, args := range [][]string{
			{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
			{"addr", "add", "192.0.2.1/24", "dev", "v0"},
			{"link", "set", "v1", "up"},
			{"link", "set", "v0", "up"},
			{"route", "add", "198.51.100.0/24", "via", "192.0.2.9"}, // someone else's
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return errors.New("ip " + strings.Join(args, " ") + ": " + string(out))
			}
		}
		r := func(dst, via string) Route {
			return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
		}
		var rt Routes
		steps := []struct {
			want []Route
			show string
		}{
			{[]Route{r("10.244.1.0/24", "192.0.2.11"), r("10.244.2.0/24", "192.0.2.12")}, "[{10.244.1.0/24 192.0.2.11} {10.244.2.0/24 192.0.2.12}]"},
			{[]Route{r("10.244.1.0/24", "192.0.2.11"), r("10.244.2.0/24", "192.0.2.13")}, "[{10.244.1.0/24 192.0.2.11} {10.244.2.0/24 192.0.2.13}]"},
			{[]Route{r("10.244.2.0/24", "192.0.2.13")}, "[{10.244.2.0/24 192.0.2.13}]"},
			{[]Route{r("10.244.2.0/24", "192.0.2.13")}, "[{10.244.2.0/24 192.0.2.13}]"},
			{nil, "[]"},
		}
		for i, s := range steps {
			if err := rt.Sync(ctx, Route{}, s.want); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			got, err := List(ctx)
			if err != nil {
				return err
			}
			var short []string
			for _, r := range got {
				short = append(short, fmt.Sprintf("{%s %s}", r.Dst, r.Via))
			}
			if "["+strings.Join(short, " ")+"]" != s.show {
				t.Errorf("step %d: routes %v, want %s", i, got, s.show)
			}
		}
		out, _ := exec.Command("ip", "route").Output()
		if !strings.Contains(string(out), "198.51.100.0/24 via 192.0.2.9") {
			t.Errorf("a route that is not driftless's was touched:\n%s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
