// Package e2e runs the driftless binary as a user would: real Git
// repositories (the git CLI, git daemon, file:// mirrors), a private
// containerd with runc on a socket of its own, the busybox test image,
// agent processes (built with -race) killed with SIGKILL, several agents
// on one machine as a cluster (a containerd namespace each, memberlist on
// loopback).
//
// Tests start everything they need and stop it when they end; under
// CI=true a missing prerequisite fails the test instead of skipping it.
// Timings are asserted only as generous bounds; speed goals are
// benchmarks (bench_test.go, `make bench`).
package e2e
