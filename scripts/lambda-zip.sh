#!/usr/bin/env bash
# Builds the Lambda deployment zip of ecsdoctor's runner (provided.al2023 custom runtime):
#
#   scripts/lambda-zip.sh [--target TRIPLE] [--binary PATH] [--out FILE]
#
#   --target TRIPLE  x86_64-unknown-linux-gnu (default: the host's) or aarch64-unknown-linux-gnu
#                    (needs `rustup target add aarch64-unknown-linux-gnu` and a cross linker, see
#                    docs/eventbridge.md); the zip is for the matching function architecture.
#   --binary PATH    zip this already-built binary instead of running `cargo build --release`
#                    (the test suite zips the debug binary this way).
#   --out FILE       default target/lambda/ecsdoctor-<x86_64|arm64>.zip
#
# The zip holds two files, both mode 0755: `bootstrap` (what provided.al2023 executes: one line,
# `exec ./ecsdoctor lambda` from the function's directory) and the `ecsdoctor` binary. glibc, not
# musl: provided.al2023 has glibc 2.34, and the script refuses a binary that needs a newer symbol
# version (checked with objdump when it is installed). Entries have a fixed timestamp, so the
# same binary always gives the same zip (and the same source_code_hash in Terraform).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET="" BINARY="" OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="$2"; shift 2 ;;
    --binary) BINARY="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "lambda-zip.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

HOST=$(rustc -vV | sed -n 's/^host: //p')
TARGET=${TARGET:-$HOST}
case "$TARGET" in
  x86_64-unknown-linux-gnu) ARCH=x86_64 ;;
  aarch64-unknown-linux-gnu) ARCH=arm64 ;;
  *) echo "lambda-zip.sh: target $TARGET is not a Lambda target (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu)" >&2; exit 2 ;;
esac
OUT=${OUT:-target/lambda/ecsdoctor-$ARCH.zip}

if [ -z "$BINARY" ]; then
  if [ "$TARGET" = "$HOST" ]; then
    cargo build --release --locked
    BINARY=target/release/ecsdoctor
  else
    if ! rustup target list --installed | grep -qx "$TARGET"; then
      echo "lambda-zip.sh: the Rust target $TARGET is not installed: rustup target add $TARGET" >&2
      exit 2
    fi
    cargo build --release --locked --target "$TARGET"
    BINARY=target/$TARGET/release/ecsdoctor
  fi
fi
[ -x "$BINARY" ] || { echo "lambda-zip.sh: $BINARY is not an executable" >&2; exit 2; }

# provided.al2023 has glibc 2.34: a binary that needs a newer symbol version would not start.
if command -v objdump >/dev/null 2>&1; then
  NEED=$(objdump -T "$BINARY" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -1)
  if [ -n "$NEED" ] && [ "$(printf '%s\n2.34\n' "$NEED" | sort -t. -k1,1n -k2,2n | tail -1)" != "2.34" ]; then
    echo "lambda-zip.sh: $BINARY needs glibc $NEED; provided.al2023 has 2.34 (build on an older glibc or with cargo-zigbuild)" >&2
    exit 1
  fi
  echo "lambda-zip.sh: $BINARY needs glibc ${NEED:-?} (provided.al2023 has 2.34)" >&2
fi

mkdir -p "$(dirname "$OUT")"
python3 - "$BINARY" "$OUT" <<'PY'
import sys, zipfile
binary, out = sys.argv[1], sys.argv[2]
bootstrap = b'#!/bin/sh\nexec "${LAMBDA_TASK_ROOT:-$(dirname "$0")}/ecsdoctor" lambda\n'
def entry(name):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.create_system = 3  # unix: keep the mode bits
    info.external_attr = (0o100755 << 16)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
with zipfile.ZipFile(out, "w") as z:
    z.writestr(entry("bootstrap"), bootstrap)
    with open(binary, "rb") as f:
        z.writestr(entry("ecsdoctor"), f.read(), compresslevel=9)
PY
SIZE=$(wc -c <"$OUT")
echo "lambda-zip.sh: wrote $OUT ($SIZE bytes, $ARCH, from $BINARY)" >&2
echo "$OUT"
