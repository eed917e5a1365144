// Package pkg checks the packaging of driftless (packaging/): the example
// agent configuration against agent.Config, and the Debian package that
// `make deb` builds, installed with dpkg into a private root, plus
// `make install` into a DESTDIR.
//
// Under CI=true a missing tool (make, dpkg-deb, dpkg) fails the test
// instead of skipping it.
package pkg
