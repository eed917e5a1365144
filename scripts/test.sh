#!/usr/bin/env bash
# Runs every test (go test -race over the module) and, when some fail,
# ends with a summary of the failures: each failed test with its own
# messages (file:line), without the agent logs the e2e tests attach, so
# that the last lines of a long run say what failed and why.
set -uo pipefail
out=$(mktemp "${TMPDIR:-/tmp}/driftless-test.XXXXXX")
trap 'rm -f "$out"' EXIT
${GO:-go} test -race -count=1 -timeout 45m "$@" ./... 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
	echo
	echo "=== failures (go test exit $rc)"
	# A failed test's own lines are indented by four spaces and start
	# with file.go:line; the agent logs it attaches are indented further.
	grep -E '^(=== RUN|--- FAIL|FAIL|panic:|    [A-Za-z0-9_./-]+\.go:[0-9]+: |    --- FAIL)' "$out" |
		grep -vE '^=== RUN' | grep -vE ': agent [^ ]+ log:$' | tail -n 200
fi
exit "$rc"
