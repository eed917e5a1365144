// Package agent is the driftless daemon of one node. It owns the loops
// and wires them with immutable values:
//
//	               desired repo            status branch
//	                    │ fetch (FetchTimeout)   │ read / CAS push (StatusTimeout)
//	                    v                        v
//	┌─ main loop ──────────────────────────────────────────────────────┐
//	│ intake: verify, validate, take a commit whole or not at all      │
//	│ leader (when it leads): leader.Next once per pass ─> status write│
//	│ publishDesired: placements for this node + their specs           │
//	└───────────────┬───────────────────────────────────▲──────────────┘
//	    nodeIn (latest value)                  nodeOut (latest value)
//	                v                                   │
//	┌─ node loop ───────────────────────────────────────┴──────────────┐
//	│ Reconciler.Sync: list, Diff, hand each replica's work to its     │
//	│ worker (stop with grace, pull, create, hooks: ContainerdTimeout, │
//	│ PullTimeout), observe ─> report (gossip, its own goroutine)      │
//	└──────────────────────────────────────────────────────────────────┘
//	HTTP: serves the snapshot under a mutex; never waits on a loop.
//
// The node loop never touches Git and never waits for the main loop: with
// Git hung or gone it keeps restarting containers from the last placements
// it was given. A placement whose desired commit does not load holds only
// its own replicas (left as they are, reported with the reason). Every
// call that leaves the process has a deadline (Config).
//
// The agent never stops containers because it stops: like the kubelet,
// it leaves them running and adopts them on the next start.
//
// It must never touch a container without driftless's ownership labels,
// never run a spec that no committed placement names, and never log a
// secret value.
package agent
