#!/usr/bin/env bash
# Benchmark (not a test): the Lambda runner's cold start and time per invocation, with and without
# verification, against the Runtime API stand-in and moto on 127.0.0.1 (benches/lambda.rs, release
# build). Needs the moto venv (created as scripts/test.sh does). Nothing leaves 127.0.0.1.
#
#   scripts/bench-lambda.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bench-common.sh   # safety environment, release binary
need_venv                        # the benchmark starts its own moto from it
export ECSDOCTOR_MOTO_PYTHON="$PY"
unset ECSDOCTOR_LAMBDA_BIN
cargo bench --locked --bench lambda
