#!/usr/bin/env bash
# Benchmark (not a test): `ecsdoctor scan` over a 500-task fleet against a local moto, next to the
# naive loop (one `ecsdoctor why` per task).
#
#   scripts/bench-scan.sh            # naive loop over 50 of the tasks, extrapolated to all
#   NAIVE=100 scripts/bench-scan.sh
#
# Starts moto on 127.0.0.1 (venv target/moto-venv, created as scripts/test.sh does), seeds the
# `many-tasks` scenario of tests/moto/seed.py (500 stopped tasks, 5 task definition revisions,
# 5 causes), then times
#   - `target/release/ecsdoctor scan --cluster ecsdoctor-fleet --no-cache`   (cold: no cached task definitions)
#   - the same with a warm `--cache-dir`
#   - `ecsdoctor why ARN` for $NAIVE tasks spread evenly over the fleet, one process each, sharing one
#     cache directory (the default behaviour), extrapolated to every task
# and prints wall times and AWS API calls by operation (from ECSDOCTOR_API_TRACE).
# Builds target/release/ecsdoctor first if it is missing. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAIVE=${NAIVE:-50}

source scripts/bench-common.sh
start_moto

echo "bench: seeding 500 stopped tasks (many-tasks) into moto $EP ..." >&2
"$PY" tests/moto/seed.py --endpoint "$EP" --scenario many-tasks >"$WORK/seed.json"
CLUSTER=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cluster"])' "$WORK/seed.json")
TASKS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tasks"])' "$WORK/seed.json")
# Every seeded task ARN, in seeding order.
"$PY" -c '
import json, sys
seed = json.load(open(sys.argv[1]))
for c in seed["causes"].values():
    for a in c["task_arns"]:
        print(a)' "$WORK/seed.json" >"$WORK/arns.txt"

# Wall clock in seconds: bash 5's EPOCHREALTIME, else Python (a few ms of its own start-up).
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else "$PY" -c 'import time; print(time.time())'; fi; }
elapsed() { "$PY" -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
# API calls by operation in a trace file: "ListTasks 1, DescribeTasks 5, ..." and the total.
calls() {
  "$PY" - "$1" <<'PYEOF'
import collections, json, sys
ops = collections.Counter()
try:
    for line in open(sys.argv[1]):
        if line.strip():
            ops[json.loads(line)["operation"]] += 1
except FileNotFoundError:
    pass
order = ["ListTasks", "DescribeTasks", "DescribeTaskDefinition", "GetLogEvents", "FilterLogEvents"]
print(", ".join(f"{o} {ops[o]}" for o in order) + f"  (total {sum(ops.values())})")
PYEOF
}
total_calls() { "$PY" -c 'import sys; print(sum(1 for l in open(sys.argv[1]) if l.strip()))' "$1"; }

# --- scan, cold and warm ---
CACHE="$WORK/cache"
T0=$(now)
ECSDOCTOR_API_TRACE="$WORK/scan-cold.jsonl" "$BIN" scan --cluster "$CLUSTER" --endpoint-url "$EP" --no-cache \
  --format json >"$WORK/scan.json"
T1=$(now)
ECSDOCTOR_API_TRACE="$WORK/scan-warm-prime.jsonl" "$BIN" scan --cluster "$CLUSTER" --endpoint-url "$EP" \
  --cache-dir "$CACHE" --format json >/dev/null
T2=$(now)
ECSDOCTOR_API_TRACE="$WORK/scan-warm.jsonl" "$BIN" scan --cluster "$CLUSTER" --endpoint-url "$EP" \
  --cache-dir "$CACHE" --format json >/dev/null
T3=$(now)
SCAN_COLD=$(elapsed "$T0" "$T1"); SCAN_WARM=$(elapsed "$T2" "$T3")
SCAN_GROUPS=$("$PY" - "$WORK/scan.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("; ".join("%d %s/%s" % (g["count"], g["culprit"], g["rule_id"]) for g in r["groups"]))
print("tasks %d, logs read %d, verdicts inferred %d" % (r["tasks"], r["logs_read"], r["inferred"]))
PYEOF
)

# --- naive: one `why` per task ---
NCACHE="$WORK/naive-cache"
# Evenly spread over the fleet, so every cause is in the sample in proportion.
"$PY" -c '
import sys
arns = open(sys.argv[1]).read().split()
n = min(int(sys.argv[2]), len(arns))
print("\n".join(arns[i * len(arns) // n] for i in range(n)))' "$WORK/arns.txt" "$NAIVE" >"$WORK/naive.txt"
N=$(wc -l <"$WORK/naive.txt" | tr -d ' ')
T4=$(now)
while read -r ARN; do
  ECSDOCTOR_API_TRACE="$WORK/naive.jsonl" "$BIN" why "$ARN" --endpoint-url "$EP" --cache-dir "$NCACHE" \
    --format json >/dev/null || true   # exit 1 (inconclusive) is an answer, not a failure
done <"$WORK/naive.txt"
T5=$(now)
NAIVE_WALL=$(elapsed "$T4" "$T5")
NAIVE_CALLS=$(total_calls "$WORK/naive.jsonl")
EXTRA=$("$PY" -c 'import sys; n, t, w, c = map(float, sys.argv[1:]); print("%.1f s, ~%d calls" % (w * t / n, c * t / n))' \
  "$N" "$TASKS" "$NAIVE_WALL" "$NAIVE_CALLS")

echo
echo "ecsdoctor scan vs one-task-at-a-time, $TASKS stopped tasks in moto ($("$BIN" --version))"
echo
printf '%-38s %9s   %s\n' "run" "wall (s)" "AWS API calls"
printf '%-38s %9s   %s\n' "scan, cold (--no-cache)" "$SCAN_COLD" "$(calls "$WORK/scan-cold.jsonl")"
printf '%-38s %9s   %s\n' "scan, warm task-definition cache" "$SCAN_WARM" "$(calls "$WORK/scan-warm.jsonl")"
printf '%-38s %9s   %s\n' "naive: why x $N (shared cache)" "$NAIVE_WALL" "$(calls "$WORK/naive.jsonl")"
printf '%-38s %9s\n' "naive, extrapolated to $TASKS tasks" "$EXTRA"
echo
echo "scan groups: $SCAN_GROUPS"
