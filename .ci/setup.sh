#!/usr/bin/env bash
# Installs what building the guest needs, idempotently, and lays out a
# wasi-sdk-shaped folder of symlinks at $1 for rquickjs-sys.
set -euo pipefail
sdk=${1:?usage: setup.sh WASI_SDK_DIR}

# fonts-dejavu-core: the font soak charts are drawn with.
bash "$(dirname "$0")/apt-install.sh" clang-19 lld-19 llvm-19 libclang1-19 \
  libclang-rt-19-dev-wasm32 wasi-libc fonts-dejavu-core

rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

mkdir -p "$sdk/bin" "$sdk/share/wasi-sysroot/lib"
ln -sfn "$(command -v clang-19)" "$sdk/bin/clang"
ln -sfn "$(command -v llvm-ar-19)" "$sdk/bin/ar"
ln -sfn "$(command -v wasm-ld-19)" "$sdk/bin/wasm-ld"
ln -sfn /usr/include/wasm32-wasi "$sdk/share/wasi-sysroot/include"
ln -sfn /usr/lib/wasm32-wasi "$sdk/share/wasi-sysroot/lib/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$sdk/share/wasi-sysroot/lib/wasm32-wasip1"
echo "wasi-sdk layout ready at $sdk"
