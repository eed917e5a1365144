// Package scheduler computes placements: which replica of which workload
// runs on which node. It is a pure function of its Input (desired
// workloads, node inventory, current placements) with no I/O, no clock and
// no global randomness, so that the same input always gives the same
// placements and every decision can be replayed in a test or by
// `driftless plan`.
//
// Per replica the scheduler filters nodes cheapest first (alive,
// schedulable, nodeSelector, taints, host ports, resources), each filter
// answering with a constant reason, then scores the feasible ones (least
// allocated first) with a seeded tie-break. Replicas stay where they are
// while their node is alive and they still fit.
//
// It must never read Git, talk to containerd or look at the time.
package scheduler
