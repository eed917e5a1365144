package leader

import (
	"strings"
	"testing"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
)

func TestServiceChangesInMessage(t *testing.T) {
	ref := manifest.Ref{Namespace: "default", Kind: "Service", Name: "web"}
	cur := (*status.State)(nil).Clone()
	next := cur.Clone()
	next.Services[ref] = services.Record{Service: ref, ClusterIP: "10.96.0.5", Endpoints: []services.Endpoint{{IP: "10.244.1.2"}}}
	if got := strings.Join(serviceChanges(cur, next), "\n"); got != "service default/web: 10.96.0.5, 1 endpoint(s)" {
		t.Fatalf("new Service: %q", got)
	}
	later := next.Clone()
	later.Services[ref] = services.Record{Service: ref, ClusterIP: "10.96.0.5"}
	if got := strings.Join(serviceChanges(next, later), "\n"); got != "service default/web: endpoints none" {
		t.Fatalf("endpoints gone: %q", got)
	}
	if got := serviceChanges(later, later.Clone()); len(got) != 0 {
		t.Fatalf("no change: %q", got)
	}
	gone := later.Clone()
	delete(gone.Services, ref)
	if got := strings.Join(serviceChanges(later, gone), "\n"); got != "remove service default/web" {
		t.Fatalf("removed: %q", got)
	}
}
