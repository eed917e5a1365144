// Package containerlog writes and reads container log files.
//
// A container's stdout and stderr reach a logger process that containerd's
// shim starts (the driftless binary itself, see RunWriter): the logger is
// the shim's child, not the agent's, so containers keep logging, and never
// block on a full pipe, while the agent is stopped or restarting.
//
// The file format is the one the Kubernetes CRI uses, one record a line:
//
//	2026-11-23T05:01:41.123456789Z stdout F hello world
//
// a UTC timestamp with nine fraction digits (fixed width, so lines sort),
// the stream (stdout or stderr), a tag (F for a full line, P for a part of a
// line longer than MaxLine, continued by the next record of that stream),
// and the text without its newline. Lines that do not parse (files written
// before this format) are returned as they are.
//
// Files of one container, oldest first:
//
//	<c>.previous.log.N ... <c>.previous.log.1 <c>.previous.log   the run before
//	<c>.log.N ... <c>.log.1 <c>.log                              the current run
//
// The writer rotates <c>.log to <c>.log.1 (and so on) before a write would
// take it over the size limit, keeping at most max-files files including
// <c>.log; when a new run of the container starts, the files of the last
// run become the <c>.previous.* files (replacing older ones).
//
// Nothing in this package talks to containerd; it must never buffer a
// line longer than MaxLine or hold output back waiting for more.
package containerlog
