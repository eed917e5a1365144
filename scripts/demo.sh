#!/usr/bin/env bash
# The driftless demo on one machine: a private containerd, examples-repo/
# served as a Git repository by `git daemon`, and a cluster of three agents
# (one containerd namespace each) applying it.
#
#   scripts/demo.sh        start (or restart) the demo and show what runs
#   scripts/demo.sh stop   stop the agent, its containers, git daemon and containerd
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=${DEMO_DIR:-/tmp/driftless-demo}
GIT_PORT=${DEMO_GIT_PORT:-19418}
API_PORT=${DEMO_API_PORT:-7481}
SOCK=$DEMO/containerd/containerd.sock
NODES="node-1 node-2 node-3"
REPO_URL=git://127.0.0.1:$GIT_PORT/desired.git
BIN=$ROOT/bin

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_all() {
	for p in agent-node-1 agent-node-2 agent-node-3 git-daemon containerd; do
		if [ -f "$DEMO/$p.pid" ]; then
			pid=$(cat "$DEMO/$p.pid")
			if kill -0 "$pid" 2>/dev/null; then
				if [ "$p" = containerd ] && [ -S "$SOCK" ]; then
					# Remove the demo's containers before containerd goes.
					for ns in $NODES; do
						for t in $(ctr -a "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do ctr -a "$SOCK" -n "$ns" tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
					done
					sleep 1
					for ns in $NODES; do
						for t in $(ctr -a "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do ctr -a "$SOCK" -n "$ns" tasks delete "$t" >/dev/null 2>&1 || true; done
						for c in $(ctr -a "$SOCK" -n "$ns" containers ls -q 2>/dev/null); do ctr -a "$SOCK" -n "$ns" containers delete "$c" >/dev/null 2>&1 || true; done
					done
				fi
				kill "$pid" 2>/dev/null || true
				for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
				kill -9 "$pid" 2>/dev/null || true
			fi
			rm -f "$DEMO/$p.pid"
		fi
	done
	# The demo's replica network: its bridge and address reservations (the
	# containers went without a CNI DEL). NAT rules the bridge plugin made
	# stay until reboot; they name chains nothing jumps to any more.
	if [ "${1:-}" = final ]; then
		ip link delete driftless0 2>/dev/null || true
		rm -rf /var/lib/cni/networks/driftless
	fi
	pkill -f "git-daemon.*--port=$GIT_PORT" 2>/dev/null || true
	pkill -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
	# containerd's mounts, the replicas' network namespaces and secret
	# tmpfs volumes under the agents' data dirs.
	if [ -d "$DEMO" ]; then
		grep " $DEMO/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	fi
}

if [ "${1:-}" = stop ]; then
	stop_all final
	rm -rf "$DEMO"
	echo "demo stopped and $DEMO removed"
	exit 0
fi

say "Installing what is missing (containerd, runc, busybox-static, git)"
scripts/install-deps.sh
[ -x "$BIN/driftless" ] || { echo "run 'make demo' (it builds bin/driftless first)"; exit 1; }

stop_all
rm -rf "$DEMO"
mkdir -p "$DEMO"/{containerd,images,data,git}

say "Starting a private containerd on $SOCK"
cat > "$DEMO/containerd/config.toml" <<TOML
version = 2
root = "$DEMO/containerd/root"
state = "$DEMO/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
TOML
containerd --config "$DEMO/containerd/config.toml" >"$DEMO/containerd.log" 2>&1 &
echo $! > "$DEMO/containerd.pid"
for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$SOCK" version >/dev/null

say "Building the busybox image archive (from Debian's busybox-static)"
"$BIN/driftless-mkimage" -o "$DEMO/images/busybox.tar" -name docker.io/library/busybox:latest

say "Serving examples-repo/ as $REPO_URL"
git init -q --bare -b main "$DEMO/git/desired.git"
git -C "$DEMO/git/desired.git" config daemon.receivepack true
git clone -q "$DEMO/git/desired.git" "$DEMO/work" 2>/dev/null
cp -r "$ROOT/examples-repo/." "$DEMO/work/"
git -C "$DEMO/work" add -A
git -C "$DEMO/work" -c user.name=demo -c user.email=demo@example.invalid commit -q -m "examples: hello, web, settings, once"
git -C "$DEMO/work" push -q origin main
git -C "$DEMO/work" remote set-url origin "$REPO_URL"
git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$DEMO/git" \
	--listen=127.0.0.1 --port="$GIT_PORT" "$DEMO/git" >"$DEMO/git-daemon.log" 2>&1 &
echo $! > "$DEMO/git-daemon.pid"
for _ in $(seq 50); do git ls-remote "$REPO_URL" >/dev/null 2>&1 && break; sleep 0.1; done

say "Starting three agents (node-1, node-2, node-3): one containerd namespace each, gossip on 127.0.0.1"
head -c 32 /dev/urandom | base64 > "$DEMO/gossip.key"
i=0
for n in $NODES; do
	i=$((i + 1))
	seeds=$(for m in 1 2 3; do [ "$m" = "$i" ] || printf '127.0.0.1:%s,' $((17945 + m)); done)
	"$BIN/driftless" agent --node "$n" --labels "zone=zone-$i" \
		--repo "$REPO_URL" --branch main \
		--data-dir "$DEMO/data/$n" --containerd-address "$SOCK" --namespace "$n" \
		--images-dir "$DEMO/images" --listen "127.0.0.1:$((API_PORT + i - 1))" --poll 2s --status-interval 1s \
		--gossip "127.0.0.1:$((17945 + i))" --join "${seeds%,}" --gossip-key-file "$DEMO/gossip.key" \
		--bootstrap-expect 3 --node-grace 10s --status-poll 5s \
		--service-proxy off --dns-listen off --peer-listen "127.0.0.1:$((API_PORT + 100 + i - 1))" \
		>"$DEMO/agent-$n.log" 2>&1 &
	echo $! > "$DEMO/agent-$n.pid"
done

printf 'waiting for the replicas to run'
ok=0
for _ in $(seq 160); do
	if "$BIN/driftless" status --repo "$REPO_URL" 2>/dev/null | grep -E "(hello|web) .*Running" | wc -l | grep -q '^3$'; then
		ok=1; break
	fi
	printf '.'; sleep 0.5
done
echo
[ $ok = 1 ] || { echo "the replicas did not all start; see $DEMO/agent-node-*.log"; tail -n 20 "$DEMO"/agent-node-1.log; exit 1; }

say "Containers per node (containerd namespace = node name)"
for n in $NODES; do
	echo "-- $n"
	ctr -a "$SOCK" -n "$n" tasks ls
done


say "driftless status (read from the status branch, no agent needed)"
"$BIN/driftless" status --repo "$REPO_URL"

say "The status branch is the change log"
git -C "$DEMO/work" fetch -q origin driftless/status
git -C "$DEMO/work" log --format='%h %s%n%(trailers:key=Desired-Commit,key=Leader,key=Term,separator=%x20)' FETCH_HEAD | sed 's/^/  /'

say "The web replica answers"
curl -fsS http://127.0.0.1:18080/ || echo "(web not answering yet)"

cat <<TXT

The demo keeps running. Try:
  cd $DEMO/work
  sed -i 's/replicas: 2/replicas: 3/' apps/hello.yaml
  git commit -qam "hello: 3 replicas"
  git push -q origin HEAD:refs/heads/try && $BIN/driftless plan --repo $REPO_URL --branch try   # what would change
  git push -q                                   # apply it
  watch $BIN/driftless status --repo $REPO_URL  # a third replica is placed and runs

  # a broken manifest is refused whole, and nothing changes:
  sed -i 's/image:/imagee:/' apps/hello.yaml && git commit -qam broken && git push -q
  $BIN/driftless status --repo $REPO_URL | head   # the rejection, with file:line:field

  kill -9 \$(cat $DEMO/agent-node-3.pid)          # a node dies: in about 20s (failure detection, then the 10s grace) its replicas move
  tail -f $DEMO/agent-node-1.log                 # what the leader does
  ls $DEMO/data/*/logs/default/deployment/hello/            # container logs, per node

Stop everything with: make demo-stop
TXT
