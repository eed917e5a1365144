// Package reconcile drives one node's containers toward the replicas
// placed on it, level-triggered, like the kubelet:
//
//	desired replicas ─┐
//	                  ├─> Diff (pure) ─> Plan ─> apply via Runtime ─> observe ─> ReplicaStatus
//	Runtime.List ─────┘   remove stale, create missing, restart exited (back-off)
//
// Every pass lists the actual containers again; events only make a pass
// come sooner.
//
// A replica is like a pod: the agent creates one network namespace per
// replica (a bind-mounted file under DataDir/netns, loopback up, then
// wired by the Network: CNI ADD in reconcile/cni, its address and host
// ports recorded in DataDir/pods/<replica>/network.json) that every
// container of the replica joins; init
// containers run before the app containers; a prober goroutine per running
// probed container feeds readiness into observe and kills containers whose
// liveness probe fails, leaving the restart to Diff and its back-off. Containers are identified by id (workload, replica,
// container and spec hash) and labels; a running container with the right
// id is never touched, so an agent restart adopts what runs.
//
// It must never touch a container without driftless's labels (the
// Runtime does not list them), and never run anything not desired.
package reconcile
