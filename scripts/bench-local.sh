#!/usr/bin/env bash
# Benchmark (not a test): ecsdoctor's own cost, offline, as ratios measured in one run.
#
#   scripts/bench-local.sh           # N=15 runs of each small command, 5 of each big log
#   N=31 BIG_N=9 scripts/bench-local.sh
#
# Prints medians and the ratios issue 13 asks for:
#   - `explain "Task stopped by user"` and `why --from tests/fixtures/runtime-task-role-s3` against a
#     trivial process start (/bin/true) and against the seeds' Python heuristic doing the same job
#     (../shared/eval/naive_baseline.py, when that checkout is present)
#   - `why --from` on a bundle whose log holds 200,000 events (get-log-events JSON) against GNU
#     `grep -F` of 20 signature words over the same file, its peak memory (/usr/bin/time -f %M)
#     against the file's size, and 200k lines against 20k lines (linear would be 10x).
# Builds target/release/ecsdoctor first if it is missing (ECSDOCTOR_BIN: another build). Offline:
# no network, no AWS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-15}
BIG_N=${BIG_N:-5}
source scripts/bench-common.sh   # safety environment, release binary, WORK
NAIVE=../shared/eval/naive_baseline.py
[ -f "$NAIVE" ] || NAIVE=""
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "ERROR: $TIME (GNU time) is needed for peak memory" >&2; exit 1; }

# Median wall time in ms (one decimal) of N runs of a command; output discarded, exit code ignored
# (exit 1 is "inconclusive", an answer).
med() { # runs, command...
  local n=$1; shift
  local i s e
  for i in $(seq 1 "$n"); do
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s%N)
    echo $(( (e - s) / 10000 ))
  done | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/100}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
# Peak resident memory (KiB) of one run.
peak() { "$TIME" -f %M -o "$WORK/time.out" "$@" >/dev/null 2>&1 || true; tail -1 "$WORK/time.out"; }

# --- a big bundle: one container, LINES events of get-log-events JSON, the denial at the end ---
make_bundle() { # dir, lines
  mkdir -p "$1/logs"
  cp tests/fixtures/runtime-task-role-s3/describe-tasks.json tests/fixtures/runtime-task-role-s3/describe-task-definition.json "$1/"
  local container
  container=$(basename tests/fixtures/runtime-task-role-s3/logs/*.json .json)
  python3 - "$1/logs/$container.json" "$2" <<'PYEOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
forms = [
    lambda i: f"2026-11-23T09:14:{i % 60:02}Z INFO request id={i} path=/orders/{i} status=200 duration_ms={i % 97}",
    lambda i: json.dumps({"level": "debug", "msg": "cache miss", "key": f"order:{i}", "ttl": 300}),
    lambda i: f"    at com.acme.orders.Reconciler.run(Reconciler.java:{i % 400})",
    lambda i: f"GET /healthz 200 {i}us user-agent=ELB-HealthChecker/2.0",
    lambda i: f"worker {i} processed batch of 52 messages from arn:aws:sqs:eu-west-1:123456789012:orders in {i % 1000} ms",
]
t0 = 1763900021000
with open(path, "w") as f:
    f.write('{\n    "events": [\n')
    for i in range(n):
        f.write("        " + json.dumps({"timestamp": t0 + i, "message": forms[i % 5](i), "ingestionTime": t0 + i + 120}) + ",\n")
    f.write("        " + json.dumps({"timestamp": t0 + n, "message": "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: User: arn:aws:sts::123456789012:assumed-role/orders-task/0123456789abcdef0123456789abcdef is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::acme-orders/2026/11/23/orders.csv\" because no identity-based policy allows the s3:PutObject action", "ingestionTime": t0 + n + 120}) + "\n")
    f.write('    ],\n    "nextForwardToken": "f/1",\n    "nextBackwardToken": "b/1"\n}\n')
PYEOF
}
make_bundle "$WORK/b20k" 20000
make_bundle "$WORK/b200k" 200000
BIG_LOG=$(ls "$WORK"/b200k/logs/*.json)
BIG_BYTES=$(stat -c %s "$BIG_LOG")
# 20 signature words, as a rule prefilter would look for them.
printf '%s\n' AccessDenied 'not authorized to perform' CannotPullContainerError ResourceInitializationError \
  OutOfMemoryError 'Access Denied' UnauthorizedOperation AccessDeniedException 'Unable to locate credentials' \
  NoCredentialProviders 'unable to pull secrets' CannotStartContainerError 'exec format error' \
  'no such file or directory' 'connection refused' 'i/o timeout' 'TaskFailedToStart' \
  'ExpiredToken' 'ThrottlingException' 'KMS.AccessDeniedException' >"$WORK/words.txt"

SMALL=tests/fixtures/runtime-task-role-s3
echo "ecsdoctor $("$BIN" --version | cut -d' ' -f2) ($BIN), medians of $N runs (big logs: $BIG_N)"
echo

T_TRUE=$(med "$N" /bin/true)
T_EXPLAIN=$(med "$N" "$BIN" explain "Task stopped by user" --format json)
T_WHY=$(med "$N" "$BIN" why --from "$SMALL" --format json)
T_LIST=$(med "$N" "$BIN" rules list)
printf '%-58s %9s\n' "command" "ms"
printf '%-58s %9s\n' "/bin/true (a trivial process start)" "$T_TRUE"
printf '%-58s %9s\n' "ecsdoctor explain \"Task stopped by user\"" "$T_EXPLAIN"
printf '%-58s %9s\n' "ecsdoctor why --from $SMALL" "$T_WHY"
printf '%-58s %9s\n' "ecsdoctor rules list" "$T_LIST"
if [ -n "$NAIVE" ]; then
  T_NEXPLAIN=$(med "$N" python3 "$NAIVE" explain "Task stopped by user" --format json)
  T_NWHY=$(med "$N" python3 "$NAIVE" why --from "$SMALL" --format json)
  printf '%-58s %9s\n' "python3 naive_baseline.py explain (the seeds' heuristic)" "$T_NEXPLAIN"
  printf '%-58s %9s\n' "python3 naive_baseline.py why --from $SMALL" "$T_NWHY"
fi

T_GREP=$(med "$BIG_N" grep -F -c -f "$WORK/words.txt" "$BIG_LOG")
T_20K=$(med "$BIG_N" "$BIN" why --from "$WORK/b20k" --format json)
T_200K=$(med "$BIG_N" "$BIN" why --from "$WORK/b200k" --format json)
M_200K=$(peak "$BIN" why --from "$WORK/b200k" --format json)
M_SMALL=$(peak "$BIN" why --from "$SMALL" --format json)
VERDICT=$("$BIN" why --from "$WORK/b200k" --format json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin)["verdict"]; print(v["culprit"], v["permissions"])' || echo "(no JSON verdict)")
echo
printf '%-58s %9s\n' "grep -F -c (20 words) over the 200k-line log" "$T_GREP"
printf '%-58s %9s\n' "ecsdoctor why --from, 20,000-line log" "$T_20K"
printf '%-58s %9s\n' "ecsdoctor why --from, 200,000-line log" "$T_200K"
echo "  200k log: $BIG_BYTES bytes; verdict: $VERDICT"
echo
echo "ratios (issue 13's targets in brackets)"
printf '  %-62s %7s\n' "explain / trivial process start" "$(ratio "$T_EXPLAIN" "$T_TRUE")"
printf '  %-62s %7s\n' "why --from fixture / trivial process start" "$(ratio "$T_WHY" "$T_TRUE")"
printf '  %-62s %7s\n' "explain, ms [< 30]" "$T_EXPLAIN"
printf '  %-62s %7s\n' "why --from fixture, ms [< 30]" "$T_WHY"
if [ -n "$NAIVE" ]; then
  printf '  %-62s %7s\n' "explain / Python heuristic explain [<= 0.5]" "$(ratio "$T_EXPLAIN" "$T_NEXPLAIN")"
  printf '  %-62s %7s\n' "why --from / Python heuristic why --from [<= 0.5]" "$(ratio "$T_WHY" "$T_NWHY")"
fi
printf '  %-62s %7s\n' "200k-line why --from / grep -F of 20 words [<= 3]" "$(ratio "$T_200K" "$T_GREP")"
printf '  %-62s %7s\n' "200k-line peak memory / log file size [<= 1.5]" "$(ratio "$(( M_200K * 1024 ))" "$BIG_BYTES")"
printf '  %-62s %7s\n' "  (peak on the small fixture, MiB: the binary's own floor)" "$(awk -v k="$M_SMALL" 'BEGIN{printf "%.1f", k/1024}')"
printf '  %-62s %7s\n' "200k lines / 20k lines [<= 11, linear is 10]" "$(ratio "$T_200K" "$T_20K")"
