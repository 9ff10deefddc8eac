# Sourced by the benchmark scripts (not run on its own): the safety environment, the release binary
# (BIN) and a scratch directory (WORK) removed on exit. Then, as a script needs them:
#   need_venv    the moto venv (sets VENV, PY)
#   start_moto   a private moto server on 127.0.0.1, killed on exit (sets EP, MOTO_PID)
# Nothing leaves 127.0.0.1.

# --- safety environment ---
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
      AWS_ENDPOINT_URL AWS_ENDPOINT_URL_ECS AWS_ENDPOINT_URL_CLOUDWATCH_LOGS \
      AWS_EC2_METADATA_SERVICE_ENDPOINT ECSDOCTOR_CLUSTER ECSDOCTOR_API_TRACE
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- the binary and a scratch directory ---
BIN="${ECSDOCTOR_BIN:-$PWD/target/release/ecsdoctor}"   # ECSDOCTOR_BIN: benchmark another build
if [ ! -x "$BIN" ]; then
  echo "bench: building $BIN (cargo build --release --locked)" >&2
  cargo build --release --locked
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecsdoctor-bench.XXXXXX")
MOTO_PID=""
cleanup() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- venv (moto + boto3, as scripts/test.sh) ---
need_venv() {
  VENV="$PWD/target/moto-venv"
  PY="$VENV/bin/python"
  if ! "$PY" -c 'import moto.server, boto3' >/dev/null 2>&1; then
    echo "bench: creating $VENV" >&2
    rm -rf "$VENV"; mkdir -p target
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'moto[server]==5.2.5' 'boto3==1.44.5' \
      || { echo "ERROR: could not install moto into $VENV" >&2; exit 1; }
  fi
}

# --- moto ---
start_moto() {
  need_venv
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  EP="http://127.0.0.1:$PORT"
  "$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  "$PY" - "$EP" <<'PYEOF' || { cat "$WORK/moto.log" >&2; exit 1; }
import json, sys, time, urllib.request
ep = sys.argv[1]
deadline = time.time() + 10
while True:
    try:
        urllib.request.urlopen(ep + "/moto-api/", timeout=2).read(); break
    except Exception:
        if time.time() > deadline: sys.exit("moto did not answer within 10 s")
        time.sleep(0.05)
body = json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode()
urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/state-manager/set-transition", data=body, method="POST"), timeout=5).read()
PYEOF
}
