// Package agent is the driftless daemon of one node. It owns four loops
// and wires them with immutable values through latest-value slots:
//
//	desired repo, bundle inbox                    status branch
//	   │ fetch (FetchTimeout)                       │ read / CAS push (StatusTimeout)
//	   v                                            v
//	┌─ intake loop ──────────────┐  intakeView  ┌─ main loop ─────────────────────┐
//	│ poll/fsnotify/webhook/hint │─────────────>│ leader: leader.Next once a pass │
//	│ verify, validate: a commit │  wants       │   ─> status commit (CAS)        │
//	│ whole or not at all;       │<─────────────│ follower: read the branch       │
//	│ load commits placements    │ (fetch, the  │ publishDesired: this node's     │
//	│ name; import bundles       │  commits)    │   replicas + their specs        │
//	└────────────────────────────┘              └───────┬──────────────────▲──────┘
//	                                            nodeIn  │                  │ nodeOut
//	                                                    v                  │
//	                         ┌─ node loop ─────────────────────────────────┴──────┐
//	                         │ Reconciler.Sync: list, Diff, hand each replica's   │
//	                         │ work to its worker (stop with grace, pull, create, │
//	                         │ hooks: ContainerdTimeout, PullTimeout), observe    │
//	                         │ ─> report (gossip, sent on its own goroutine)      │
//	                         └────────────────────────────────────────────────────┘
//	                         ┌─ network loop (netIn: Service records, nodes) ─────┐
//	                         │ pod subnet and routes to the other nodes' subnets, │
//	                         │ Service rules (one iptables-restore per change),   │
//	                         │ the cluster DNS table; resynced every 30 s         │
//	                         └────────────────────────────────────────────────────┘
//	HTTP: serves the snapshot under a mutex (/api/v1/status, /api/v1/cluster,
//	the dashboard at /, /metrics computed at scrape time from it, a bounded
//	Server-Sent Events stream of changes, replicas' logs); never waits on a
//	loop. The node loop also deletes the data of this node's claims whose
//	bindings say Deleting.
//
// No loop waits for another's slow work: with the desired repository
// hung, the leader still commits placements and the node still restarts
// containers; with the status branch hung, the node keeps the last
// placements it was given. A placement whose desired commit is not loaded
// (yet) holds only its own replicas (left as they are, reported with the
// reason). Every call that leaves the process has a deadline (Config).
//
// The agent never stops containers because it stops: like the kubelet,
// it leaves them running and adopts them on the next start.
//
// It must never touch a container without driftless's ownership labels,
// never run a spec that no committed placement names, and never log a
// secret value.
package agent
