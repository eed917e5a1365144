#!/usr/bin/env bash
# The driftless demo on one machine: a private containerd, examples-repo/
# served as a Git repository by `git daemon`, and one agent applying it.
#
#   scripts/demo.sh        start (or restart) the demo and show what runs
#   scripts/demo.sh stop   stop the agent, its containers, git daemon and containerd
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=${DEMO_DIR:-/tmp/driftless-demo}
GIT_PORT=${DEMO_GIT_PORT:-19418}
API=${DEMO_API:-127.0.0.1:7480}
SOCK=$DEMO/containerd/containerd.sock
NS=driftless
REPO_URL=git://127.0.0.1:$GIT_PORT/desired.git
BIN=$ROOT/bin

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_all() {
	for p in agent git-daemon containerd; do
		if [ -f "$DEMO/$p.pid" ]; then
			pid=$(cat "$DEMO/$p.pid")
			if kill -0 "$pid" 2>/dev/null; then
				if [ "$p" = containerd ] && [ -S "$SOCK" ]; then
					# Remove the demo's containers before containerd goes.
					for t in $(ctr -a "$SOCK" -n $NS tasks ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
					sleep 1
					for t in $(ctr -a "$SOCK" -n $NS tasks ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS tasks delete "$t" >/dev/null 2>&1 || true; done
					for c in $(ctr -a "$SOCK" -n $NS containers ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS containers delete "$c" >/dev/null 2>&1 || true; done
				fi
				kill "$pid" 2>/dev/null || true
				for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
				kill -9 "$pid" 2>/dev/null || true
			fi
			rm -f "$DEMO/$p.pid"
		fi
	done
	pkill -f "git-daemon.*--port=$GIT_PORT" 2>/dev/null || true
	pkill -f "containerd-shim-runc-v2 -namespace $NS -address $SOCK" 2>/dev/null || true
	if [ -d "$DEMO/containerd" ]; then
		grep " $DEMO/containerd" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	fi
}

if [ "${1:-}" = stop ]; then
	stop_all
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

say "Starting the agent (node-1), log in $DEMO/agent.log"
"$BIN/driftless" agent --node node-1 --labels zone=demo \
	--repo "$REPO_URL" --branch main \
	--data-dir "$DEMO/data" --containerd-address "$SOCK" --namespace $NS \
	--images-dir "$DEMO/images" --listen "$API" --poll 2s --status-interval 1s \
	>"$DEMO/agent.log" 2>&1 &
echo $! > "$DEMO/agent.pid"

printf 'waiting for the replicas to run'
ok=0
for _ in $(seq 120); do
	if curl -fsS "http://$API/api/v1/status" 2>/dev/null | grep -q '"phase": "Running"'; then
		running=$(curl -fsS "http://$API/api/v1/status" | grep -c '"phase": "Running"' || true)
		if [ "$running" -ge 3 ]; then ok=1; break; fi
	fi
	printf '.'; sleep 0.5
done
echo
[ $ok = 1 ] || { echo "the replicas did not all start; see $DEMO/agent.log"; tail -n 20 "$DEMO/agent.log"; exit 1; }

# The agent commits observed phases at most once per --status-interval.
for _ in $(seq 40); do
	"$BIN/driftless" status --repo "$REPO_URL" 2>/dev/null | grep -q "hello  *1  *node-1  *Running" && break
	sleep 0.25
done

say "Containers in containerd namespace '$NS'"
ctr -a "$SOCK" -n $NS tasks ls

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
  git commit -qam "hello: 3 replicas" && git push -q
  watch ctr -a $SOCK -n $NS tasks ls          # a third container appears
  $BIN/driftless status --repo $REPO_URL

  # a broken manifest is refused whole, and nothing changes:
  sed -i 's/image:/imagee:/' apps/hello.yaml && git commit -qam broken && git push -q
  curl -s http://$API/api/v1/status | grep -A6 lastRejection

  tail -f $DEMO/agent.log                     # what the agent does
  tail -f $DEMO/data/logs/default/hello/0/main.log

Stop everything with: make demo-stop
TXT
