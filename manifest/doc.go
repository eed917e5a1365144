// Package manifest is driftless's API: the Kubernetes-style types a
// desired commit holds (workloads, ConfigMaps, Secrets, Node policies),
// their strict decoding with `file:line: field.path: problem` for every
// unknown field and invalid value, validation, Kubernetes' defaults, the
// spec hash of a template, and the placement record (replica → node, spec
// hash, desired commit, observed status) that the scheduler produces, the
// status branch stores and the node consumes.
//
// It also holds the facts about a pod that every other package must agree
// on, computed once here: its host ports (PodSpec.HostPorts), its
// effective resource requests (PodSpec.EffectiveRequests), whether a label
// selector matches (LabelSelector.Matches) and whether a placement
// changed (Rebound).
//
// It must never do I/O beyond the bytes it is handed, never depend on
// another driftless package (but internal/sealed, to recognise a sealed
// Secret), never accept a field it does not implement
// (an unsupported field is a located error, not ignored), and never put
// a Secret's value in an error or a log line.
package manifest
