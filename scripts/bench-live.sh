#!/usr/bin/env bash
# Benchmark (not a test): ecsdoctor's live path against a local moto behind a proxy that adds a
# fixed latency to every call (scripts/latency-proxy.py), next to the AWS CLI.
#
#   scripts/bench-live.sh                  # N=10 runs each, 100 ms per call
#   N=20 DELAY_MS=50 scripts/bench-live.sh
#
# Starts moto on 127.0.0.1 (venv target/moto-venv, created as scripts/test.sh does; awscli is added
# to it here only), seeds the runtime-s3-denied scenario with the task role's policies
# (tests/moto/seed_iam.py, case task-role-allowed, so verification has real reads to make), then times
# `target/release/ecsdoctor why ARN --format json`, cold (--no-cache) and warm (--cache-dir), with and
# without verification, through the proxy and straight to moto (no added latency: what ecsdoctor and
# moto themselves cost), and the same evidence gathered with three sequential `aws` CLI calls through
# the proxy. Prints median wall times, the API rounds seen in ECSDOCTOR_API_TRACE, and the ratio of
# the wall time to rounds x the proxy's delay (issue 13: <= 1.15).
# Builds target/release/ecsdoctor first if it is missing. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-10}
DELAY_MS=${DELAY_MS:-100}

source scripts/bench-common.sh
start_moto
if [ ! -x "$VENV/bin/aws" ]; then
  echo "bench: installing awscli into $VENV" >&2
  "$VENV/bin/pip" install -q 'awscli==1.46.3' || { echo "ERROR: could not install awscli into $VENV" >&2; exit 1; }
fi
AWS="$VENV/bin/aws"   # explicitly the venv's: another `aws` may be on PATH

SEED=$("$PY" tests/moto/seed.py --endpoint "$EP" --scenario runtime-s3-denied)
"$PY" tests/moto/seed_iam.py --endpoint "$EP" --case task-role-allowed >/dev/null
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$SEED" "$1"; }
ARN=$(field task_arn); CLUSTER=$(field cluster); TD=$(field task_definition_arn)
GROUP=$(field log_group); STREAM=$(field log_stream)

"$PY" scripts/latency-proxy.py --upstream "$EP" --delay-ms "$DELAY_MS" --port-file "$WORK/proxy.port" \
  --log "$WORK/calls.log" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
trap 'kill "$PROXY_PID" 2>/dev/null || true; cleanup' EXIT INT TERM
for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
[ -s "$WORK/proxy.port" ] || { echo "ERROR: the latency proxy did not start: $(cat "$WORK/proxy.log")" >&2; exit 1; }
PEP="http://127.0.0.1:$(cat "$WORK/proxy.port")"
echo "moto $EP, behind $PEP (+$DELAY_MS ms per call); task $ARN"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
max_round() { cat "$@" 2>/dev/null | "$PY" -c '
import json, sys
r = [json.loads(l).get("round", 0) for l in sys.stdin if l.strip()]
print(max(r) if r else 0)'; }
n_calls() { cat "$@" 2>/dev/null | grep -c . || true; }

run_ecsdoctor() { # endpoint, trace file, extra args...
  local ep=$1 trace=$2; shift 2
  local t0 t1 rc=0
: >"$WORK/calls.log"
  t0=$(now_ms)
  ECSDOCTOR_API_TRACE="$trace" "$BIN" why "$ARN" --endpoint-url "$ep" --format json "$@" >"$WORK/out.json" 2>"$WORK/err.txt" || rc=$?
  t1=$(now_ms)
  if [ "$rc" -gt 1 ]; then echo "  warning: ecsdoctor exited $rc: $(head -c 300 "$WORK/err.txt")" >&2; fi
  cp "$WORK/calls.log" "${trace%.jsonl}.calls"
  echo $(( t1 - t0 ))
}
# Milliseconds during which at least one call was in flight at the proxy (latency plus moto's own
# time): what the network cost that run. The rest of the wall time is ecsdoctor's own.
waited() { "$PY" -c '
import sys
iv = sorted((float(a), float(b)) for a, b, *_ in (l.split() for l in open(sys.argv[1]) if l.strip()))
total, end = 0.0, None
for a, b in iv:
    if end is None or a > end:
        total += b - a; end = b
    elif b > end:
        total += b - end; end = b
print(round(total))' "$1"; }

# label, cache mode (cold|warm), extra args... -> one table row
bench() {
  local label=$1 mode=$2; shift 2
  local tag=${label//[^a-z]/} cache=() ep
  for ep in "$PEP" "$EP"; do
    local kind=proxy; [ "$ep" = "$EP" ] && kind=direct
    if [ "$mode" = warm ]; then
      rm -rf "$WORK/cache-$tag"; mkdir -p "$WORK/cache-$tag"; cache=(--cache-dir "$WORK/cache-$tag")
      run_ecsdoctor "$ep" "$WORK/prime.jsonl" "${cache[@]}" "$@" >/dev/null
    else
      cache=(--no-cache)
    fi
    : >"$WORK/$tag-$kind.ms"
    for i in $(seq 1 "$N"); do
      rm -f "$WORK/$tag-$kind-$i.jsonl"
      run_ecsdoctor "$ep" "$WORK/$tag-$kind-$i.jsonl" "${cache[@]}" "$@" >>"$WORK/$tag-$kind.ms"
    done
  done
  local wall direct rounds calls net
  : >"$WORK/$tag.own"
  for i in $(seq 1 "$N"); do
    echo $(( $(sed -n "${i}p" "$WORK/$tag-proxy.ms") - $(waited "$WORK/$tag-proxy-$i.calls") )) >>"$WORK/$tag.own"
  done
  wall=$(median <"$WORK/$tag-proxy.ms"); direct=$(median <"$WORK/$tag-direct.ms")
  rounds=$(max_round "$WORK/$tag-proxy-1.jsonl"); calls=$(n_calls "$WORK/$tag-proxy-1.jsonl")
  local own; own=$(median <"$WORK/$tag.own")
  printf '%-20s %7s %7s %7s %6s %6s %9s %7s %8s\n' "$label" "$wall" "$direct" "$own" "$rounds" "$calls" \
    "$(( rounds * DELAY_MS ))" \
    "$(awk -v w="$wall" -v r="$rounds" -v d="$DELAY_MS" 'BEGIN { if (r > 0) printf "%.2f", w/(r*d); else print "n/a" }')" \
    "$(awk -v w="$wall" -v o="$own" 'BEGIN { if (w > o) printf "%.2f", w/(w-o); else print "n/a" }')"
}

echo
echo "ecsdoctor $("$BIN" --version | cut -d' ' -f2), medians of $N runs"
printf '%-20s %7s %7s %7s %6s %6s %9s %7s %8s\n' "why" "wall" "direct" "own" "rounds" "calls" "rounds*d" "ratio" "wall/net"
bench "cold, --no-verify" cold --no-verify
bench "warm, --no-verify" warm --no-verify
bench "cold, verifying" cold
bench "warm, verifying" warm
echo "  ms, medians. wall: through the proxy; direct: straight to moto (no added latency: ecsdoctor's"
echo "  time plus moto's); own: wall minus the time at least one call was in flight at the proxy"
echo "  (ecsdoctor's own time on the critical path); ratio: wall / (rounds x $DELAY_MS ms) [issue 13: <= 1.15];"
echo "  wall/net: wall / (wall - own), against the network time actually waited (moto's own time included)"
echo "  verdict: $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d.get("verdict",{}); print(v.get("culprit"), v.get("category"), v.get("permissions"), (v.get("verification") or {}).get("status"))' "$WORK/out.json" 2>/dev/null || echo '(no JSON verdict)')"

echo
echo "aws CLI ($("$AWS" --version 2>&1 | cut -d' ' -f1)): describe-tasks + describe-task-definition + logs get-log-events, sequential, through the proxy, $N runs"
: >"$WORK/cli.ms"
for i in $(seq 1 "$N"); do
  t0=$(now_ms)
  "$AWS" --endpoint-url "$PEP" ecs describe-tasks --cluster "$CLUSTER" --tasks "$ARN" >/dev/null
  "$AWS" --endpoint-url "$PEP" ecs describe-task-definition --task-definition "$TD" >/dev/null
  "$AWS" --endpoint-url "$PEP" logs get-log-events --log-group-name "$GROUP" --log-stream-name "$STREAM" --start-from-head >/dev/null
  t1=$(now_ms)
  echo $(( t1 - t0 )) >>"$WORK/cli.ms"
done
echo "  median total wall: $(median <"$WORK/cli.ms") ms (3 calls, 3 x $DELAY_MS ms of latency)"
