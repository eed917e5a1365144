package agent

import (
	"context"
	"time"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/reconcile"
	"driftless.dev/driftless/sources"
	"driftless.dev/driftless/sources/git"
)

// fakeSource is a desired repository in memory: commits by id, a head.
// Function fields left nil behave as a healthy repository.
type fakeSource struct {
	head    sources.Revision
	files   map[string][]manifest.File
	syncErr func() error
}

func (f *fakeSource) Sync(ctx context.Context) (sources.Revision, error) {
	if f.syncErr != nil {
		if err := f.syncErr(); err != nil {
			return sources.Revision{}, err
		}
	}
	return f.head, nil
}
func (f *fakeSource) Files(_ context.Context, commit, _ string) ([]manifest.File, error) {
	return f.files[commit], nil
}
func (f *fakeSource) Has(commit string) bool                   { _, ok := f.files[commit]; return ok }
func (f *fakeSource) IsAncestor(_, _ string) (bool, error)     { return true, nil }
func (f *fakeSource) Verify(_, _, _ string, _ git.Trust) error { return nil }
func (f *fakeSource) Head() (sources.Revision, error)          { return f.head, nil }
func (f *fakeSource) ImportBundle(context.Context, string) (sources.Revision, error) {
	return sources.Revision{}, nil
}
func (f *fakeSource) AdoptHead(string) error { return nil }

// fakeReconciler records the desired replicas it was given and reports
// them running.
type fakeReconciler struct {
	sync func(desired []reconcile.DesiredReplica) (map[reconcile.ReplicaKey]manifest.ReplicaStatus, error)
}

func (f *fakeReconciler) Sync(_ context.Context, desired []reconcile.DesiredReplica) (map[reconcile.ReplicaKey]manifest.ReplicaStatus, error) {
	if f.sync != nil {
		return f.sync(desired)
	}
	out := map[reconcile.ReplicaKey]manifest.ReplicaStatus{}
	for _, d := range desired {
		out[d.Key()] = manifest.ReplicaStatus{Phase: manifest.PhaseRunning, Ready: true, SpecHash: d.SpecHash}
	}
	return out, nil
}
func (f *fakeReconciler) NextWake() time.Time { return time.Time{} }
func (f *fakeReconciler) RetryImagePulls()    {}
