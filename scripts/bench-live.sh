#!/usr/bin/env bash
# Benchmark (not a test): ecsdoctor's live path against a local moto, next to the AWS CLI.
#
#   scripts/bench-live.sh            # N=10 runs each
#   N=20 scripts/bench-live.sh
#
# Starts moto on 127.0.0.1 (venv target/moto-venv, created as scripts/test.sh does; awscli is added
# to it here only), seeds the runtime-s3-denied scenario, then times
#   - `target/release/ecsdoctor why ARN --endpoint-url ... --format json --no-cache`  (cold), N times
#   - the same with a warm `--cache-dir`, N times
#   - the same evidence gathered with three sequential `aws` CLI calls, N times
# and prints median wall times and the largest API round seen in ECSDOCTOR_API_TRACE.
# Builds target/release/ecsdoctor first if it is missing. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-10}

source scripts/bench-common.sh
if [ ! -x "$VENV/bin/aws" ]; then
  echo "bench: installing awscli into $VENV" >&2
  "$VENV/bin/pip" install -q 'awscli==1.46.3' || { echo "ERROR: could not install awscli into $VENV" >&2; exit 1; }
fi
AWS="$VENV/bin/aws"   # explicitly the venv's: another `aws` may be on PATH

SEED=$("$PY" tests/moto/seed.py --endpoint "$EP" --scenario runtime-s3-denied)
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$SEED" "$1"; }
ARN=$(field task_arn); CLUSTER=$(field cluster); TD=$(field task_definition_arn)
GROUP=$(field log_group); STREAM=$(field log_stream)
echo "moto $EP, task $ARN"

now_ms() { "$PY" -c 'import time; print(time.monotonic_ns() // 1000000)'; }
# date is cheaper than a python start when it supports %N
if [ "$(date +%N)" != "%N" ]; then now_ms() { echo $(( $(date +%s%N) / 1000000 )); }; fi

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
max_round() { cat "$@" 2>/dev/null | "$PY" -c '
import json, sys
r = [json.loads(l).get("round", 0) for l in sys.stdin if l.strip()]
print(max(r) if r else "none (no trace lines)")'; }

run_ecsdoctor() { # label, trace file, extra args...
  local trace=$2; shift 2
  local t0 t1 rc=0
  t0=$(now_ms)
  ECSDOCTOR_API_TRACE="$trace" "$BIN" why "$ARN" --endpoint-url "$EP" --format json "$@" >"$WORK/out.json" 2>"$WORK/err.txt" || rc=$?
  t1=$(now_ms)
  if [ "$rc" -gt 1 ]; then echo "  warning: ecsdoctor exited $rc: $(head -c 300 "$WORK/err.txt")" >&2; fi
  echo $(( t1 - t0 ))
}

echo
echo "ecsdoctor, cold (--no-cache), $N runs"
: >"$WORK/cold.ms"
for i in $(seq 1 "$N"); do run_ecsdoctor cold "$WORK/cold-$i.jsonl" --no-cache >>"$WORK/cold.ms"; done
echo "  median wall: $(median <"$WORK/cold.ms") ms   max API round: $(max_round "$WORK"/cold-*.jsonl)"

echo "ecsdoctor, warm (--cache-dir, primed once), $N runs"
CACHE="$WORK/cache"; mkdir -p "$CACHE"
run_ecsdoctor prime "$WORK/prime.jsonl" --cache-dir "$CACHE" >/dev/null
: >"$WORK/warm.ms"
for i in $(seq 1 "$N"); do run_ecsdoctor warm "$WORK/warm-$i.jsonl" --cache-dir "$CACHE" >>"$WORK/warm.ms"; done
echo "  median wall: $(median <"$WORK/warm.ms") ms   max API round: $(max_round "$WORK"/warm-*.jsonl)"
echo "  verdict: $("$PY" -c 'import json,sys; v=json.load(open(sys.argv[1])).get("verdict",{}); print(v.get("culprit"), v.get("category"), v.get("permissions"))' "$WORK/out.json" 2>/dev/null || echo '(no JSON verdict)')"

echo "aws CLI ($("$AWS" --version 2>&1 | cut -d' ' -f1)): describe-tasks + describe-task-definition + logs get-log-events, sequential, $N runs"
: >"$WORK/cli.ms"
for i in $(seq 1 "$N"); do
  t0=$(now_ms)
  "$AWS" --endpoint-url "$EP" ecs describe-tasks --cluster "$CLUSTER" --tasks "$ARN" >/dev/null
  "$AWS" --endpoint-url "$EP" ecs describe-task-definition --task-definition "$TD" >/dev/null
  "$AWS" --endpoint-url "$EP" logs get-log-events --log-group-name "$GROUP" --log-stream-name "$STREAM" --start-from-head >/dev/null
  t1=$(now_ms)
  echo $(( t1 - t0 )) >>"$WORK/cli.ms"
done
echo "  median total wall: $(median <"$WORK/cli.ms") ms (3 calls)"
