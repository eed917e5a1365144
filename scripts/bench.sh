#!/usr/bin/env bash
# Runs driftless's benchmarks and prints them as one table. Numbers from one
# run on one machine; compare ratios measured side by side, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { go test -run '^$' -count=1 -timeout 20m "$@" 2>&1 | tee -a "$out" >&2; }
run -bench 'BenchmarkLoad2000' -benchmem -benchtime 5x ./manifest
run -bench 'BenchmarkDiff' -benchmem ./reconcile
run -bench 'BenchmarkLeaderPass' -benchmem ./leader
run -bench 'BenchmarkNetNS|BenchmarkDialInNetNS' -benchtime 300x ./reconcile
run -bench 'BenchmarkStart50' -benchtime 3x ./reconcile/containerd
run -bench 'BenchmarkPushToRunning' -benchtime 5x ./test/e2e
run -bench 'BenchmarkImportBundle' -benchtime 20x ./sources/git
run -bench 'BenchmarkServeOneCommit' -benchtime 30x ./sources/git
run -bench 'BenchmarkStatusGrowth' -benchtime 300x ./status
run -bench 'BenchmarkReadStatus' -benchtime 200x ./status
run -bench 'BenchmarkSchedule5k|BenchmarkReschedule5kNodeLoss' -benchtime 3x ./scheduler
run -bench 'BenchmarkLogAndAudit' -benchtime 5x ./status
run -bench 'BenchmarkFailover3$|BenchmarkFailover20$' -benchtime 1x ./test/e2e
run -bench 'BenchmarkRender1000x10' -benchmem -benchtime 10x ./netproxy
run -bench 'BenchmarkSync1000x10|BenchmarkRestoreFloor1000x10' -benchtime 3x ./netproxy
run -bench 'BenchmarkQuery' ./clusterdns
run -bench 'BenchmarkPodToPod' -benchtime 500x ./test/e2e
run -bench 'BenchmarkTwentyToReady' -benchtime 1x ./test/e2e
run -bench 'BenchmarkProvision' -benchtime 200x ./volumes/local
run -bench 'BenchmarkScrape1000' -benchtime 50x ./metrics
run -bench 'BenchmarkDashboard' -benchtime 1x ./test/e2e
run -bench 'BenchmarkGitHostLoad' -benchtime 1x ./test/e2e
run -bench 'BenchmarkFleet' -benchtime 1x -timeout 30m ./test/e2e
echo
printf '%-44s %s\n' "benchmark" "result"
printf '%-44s %s\n' "---------" "------"
grep -E '^Benchmark' "$out" | while read -r name _n rest; do
	printf '%-44s %s\n' "$name" "$rest"
done
