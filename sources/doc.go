// Package sources defines how the agent reads desired state: a Source
// follows a branch, tag or commit of a repository and hands out the
// manifest files of a commit. Implementations live in sub-packages
// (sources/git). A Source must never check out a work tree, never write to
// the remote, and never lose what it fetched before when the remote is
// unreachable.
package sources
