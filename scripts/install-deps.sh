#!/usr/bin/env bash
# Installs, from Debian's packages, what driftless's demo and tests need:
# containerd and runc (the container runtime), busybox-static (the test and
# demo image is built from it), git (go-git's file:// transport and the
# tests' pushes), openssh-client (ssh-keygen, for the signature tests),
# iproute2 and procps, containernetworking-plugins and iptables (each
# replica's network: bridge, host-local, portmap), docker-registry and
# skopeo (the pull tests' local registry), prometheus (promtool and a
# real scrape in the metrics tests), chromium, nodejs and npm (the
# dashboard driven by playwright-core), make and dpkg (the package),
# nginx, fcgiwrap and openssh-server (the real Git hosts of the HTTPS and
# SSH tests, started by the tests on loopback; not as services). Does
# nothing for what is already there.
set -euo pipefail
need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /bin/busybox ] && file_is_static=$( (ldd /bin/busybox 2>&1 || true) | grep -c "not a dynamic" ) || file_is_static=0
[ "$file_is_static" = 1 ] || need+=(busybox-static)
command -v git >/dev/null 2>&1 || need+=(git)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v pkill >/dev/null 2>&1 || need+=(procps)
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
cni_ok=0
for d in /opt/cni/bin /usr/lib/cni; do
	[ -x "$d/bridge" ] && [ -x "$d/host-local" ] && [ -x "$d/portmap" ] && cni_ok=1
done
[ "$cni_ok" = 1 ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v make >/dev/null 2>&1 || need+=(make)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/sbin/fcgiwrap ] || need+=(fcgiwrap)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
		exit 1
	fi
	echo "installing: ${need[*]}"
	apt-get update -qq
	# The servers among them are for the tests to start: keep their
	# packages from starting them as services.
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	[ "$made_policy" = 0 ] || rm -f "$policy"
fi
# The dashboard test's playwright-core, into its own folder (no browser
# download: it drives Debian's Chromium).
if [ ! -d test/e2e/dashboard/node_modules/playwright-core ] && command -v npm >/dev/null 2>&1; then
	echo "installing playwright-core into test/e2e/dashboard"
	npm install --prefix test/e2e/dashboard --no-package-lock --no-audit --no-fund --silent
fi
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "go is at /usr/local/go/bin: add it to PATH" >&2
	else
		echo "Go toolchain missing: install Go 1.26 or newer" >&2
	fi
	exit 1
fi
