// Package leader is what the scheduler leader decides, as one pure
// function: from the status branch as read, the desired commit in force,
// the gossip view and the nodes' reports, Next computes the status the
// branch should hold next and the commit message that says why.
//
//	Input ──> inventory (gossip + branch + Node policies, node grace)
//	      ──> observed placements (reports matched to rows by template)
//	      ──> controllers (Jobs, CronJobs, rollouts) and the scheduler (jobs.Decide)
//	      ──> allocation per node ──> describe (commit message) ──> Output
//
// Next does no I/O and reads no clock: every time it needs is in its
// input, and the grace bookkeeping it keeps (when each node was first
// seen dead) goes in and comes out explicitly. The agent calls it once per
// pass (and once more per compare-and-swap retry, on the fresher branch);
// `driftless plan` calls it with the inputs as far as Git holds them, so
// that it shows what the leader would do.
//
// It must never write Git, talk to containerd or gossip, or keep state
// between calls.
package leader
