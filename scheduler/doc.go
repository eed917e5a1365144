// Package scheduler computes placements: which replica of which workload
// runs on which node. It is a pure function of its Input (desired
// workloads, node inventory, current placements, policy) with no I/O, no
// clock and no global randomness, so that the same input always gives the
// same placements and every decision can be replayed in a test or by
// `driftless plan`.
//
//	keep (pass 1)    alive, no untolerated NoExecute, fits   -> reserved
//	static, once per nodeSelector+affinity+tolerations:
//	                 alive, unschedulable, nodeSelector,
//	                 required node affinity, NoSchedule/NoExecute taints
//	per replica:     host ports, resources, pod anti-affinity (both
//	                 ways), pod affinity, topology spread DoNotSchedule
//	score (0..1 each, weighted): resources (least- or most-allocated) 1,
//	                 PreferNoSchedule 3, preferred node affinity 2,
//	                 spreading 2, preferred pod (anti-)affinity 2
//
// Filters answer with constant reasons; a pending replica carries them
// counted per node ("3 node(s): insufficient memory").
//
// Running replicas stay where they are while their node is alive, carries
// no NoExecute taint they do not tolerate, and they still fit: node
// labels, cordons and affinity are checked when a replica is placed, not
// while it runs (IgnoredDuringExecution). A changed template is placed
// like a new replica, except that a cordon does not move it.
//
// Sampling: like kube-scheduler's percentageOfNodesToScore, a replica
// scores only the first feasible nodes found (all nodes below 100, 10% of
// 5,000, never under 5% or 100) walking the statically feasible nodes
// from a point seeded by the replica, in an order that interleaves zones.
// The cost per replica is then bounded by the sample, not the cluster;
// the price is that the best node of the sample may not be the best of
// the cluster (a replica can land on a node a little fuller than the
// emptiest one). Filters are never sampled: a replica is pending only
// when no node at all fits. Input.PercentageOfNodesToScore = 100 scores
// every node.
//
// Default spreading counts a workload's own replicas per node and per
// topology.kubernetes.io/zone (nodes without the label form no zone); a
// workload with topologySpreadConstraints is spread by those only, and
// the most-allocated policy does without default spreading. The domains
// of a spread constraint are those of the nodes the replica may use.
//
// Requests: the controllers (package rollout for Deployments, DaemonSets
// and StatefulSets, package jobs for Jobs) decide which replica indexes
// exist and which old replicas keep their template (and the commit it
// comes from); Schedule places what they ask and treats held replicas as
// any other kept replica.
//
// Claims: a replica mounting a node-local claim bound to a node goes
// there only; its first use binds the claim where the replica lands, if
// the node's volume space holds it. Priorities order pass 2, and a
// replica that fits nowhere may preempt lower priorities; disruption
// budgets bound preemption, drains and NoExecute evictions.
//
// It must never read Git, talk to containerd or look at the time.
package scheduler
