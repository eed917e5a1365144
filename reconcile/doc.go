// Package reconcile drives one node's containers toward the replicas
// placed on it, level-triggered, like the kubelet:
//
//	desired replicas ─┐
//	                  ├─> Diff (pure) ─> Plan ─> apply via Runtime ─> observe ─> ReplicaStatus
//	Runtime.List ─────┘   remove stale, create missing, restart exited (back-off)
//
// Every pass lists the actual containers again; events only make a pass
// come sooner. Containers are identified by id (workload, replica,
// container and spec hash) and labels; a running container with the right
// id is never touched, so an agent restart adopts what runs.
//
// It must never touch a container without driftless's labels (the
// Runtime does not list them), and never run anything not desired.
package reconcile
