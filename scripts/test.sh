#!/usr/bin/env bash
# The project's test command:  scripts/test.sh [extra `cargo test` arguments]
#
# 1. pins a safe AWS environment (dummy credentials, fixed region, no config files, no EC2 metadata
#    probing): nothing in the test suite may reach real AWS;
# 2. makes sure the moto venv exists (target/moto-venv: the local AWS emulator the live tests use)
#    and fails loudly if it cannot be created: the live tests must run, never be skipped;
# 3. runs `cargo test --all-targets --locked "$@"`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- safety environment: inherited by cargo, the test binaries, moto and the ecsdoctor binary ---
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
      AWS_ENDPOINT_URL AWS_ENDPOINT_URL_ECS AWS_ENDPOINT_URL_CLOUDWATCH_LOGS \
      AWS_EC2_METADATA_SERVICE_ENDPOINT
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- moto venv ---
VENV="$PWD/target/moto-venv"
MOTO_SPEC='moto[server]==5.2.5'
BOTO3_SPEC='boto3==1.44.5'

venv_ok() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import moto, moto.server, boto3; assert moto.__version__ == "5.2.5", moto.__version__' \
      >/dev/null 2>&1
}

if ! venv_ok; then
  echo "scripts/test.sh: creating $VENV ($MOTO_SPEC, $BOTO3_SPEC); takes about a minute" >&2
  rm -rf "$VENV"
  mkdir -p "$PWD/target"
  if ! python3 -m venv "$VENV" || ! "$VENV/bin/pip" install -q "$MOTO_SPEC" "$BOTO3_SPEC" || ! venv_ok; then
    {
      echo
      echo "ERROR: scripts/test.sh could not install moto into $VENV."
      echo "       The live AWS tests (tests/live.rs) need it and are never skipped."
      echo "       Needs: python3 with the venv module (Debian: apt-get install python3-venv) and access to PyPI."
      echo "       Try by hand: python3 -m venv $VENV && $VENV/bin/pip install '$MOTO_SPEC' '$BOTO3_SPEC'"
    } >&2
    exit 1
  fi
fi
export ECSDOCTOR_MOTO_PYTHON="$VENV/bin/python"

exec cargo test --all-targets --locked "$@"
