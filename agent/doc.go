// Package agent is the driftless daemon of one node. It owns the loops:
// fetch the desired commit and take it whole or not at all, compute
// placements (this node is its own scheduler leader until clustering is
// wired), commit them to the status branch, and drive the node's
// containers toward the committed placements, level-triggered.
//
// All mutable state is owned by one goroutine; the HTTP API reads a
// snapshot. The agent never stops containers because it stops: like the
// kubelet, it leaves them running and adopts them on the next start.
//
// It must never touch a container without driftless's ownership labels,
// never run a spec that no committed placement names, and never log a
// secret value.
package agent
