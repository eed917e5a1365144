// Package testenv is the test harness: real Git repositories made with the
// git CLI and served by `git daemon`, a private containerd on its own
// socket, and a busybox OCI image. Under CI=true a missing binary fails
// the test instead of skipping it. Only tests import this package.
package testenv
