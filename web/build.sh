#!/usr/bin/env bash
# Builds the browser playground into web/dist/: kubenat-web compiled to wasm32 with the
# `web` profile, wasm-bindgen's JavaScript glue, and the static page. Serve web/dist/ with
# any static file server (python3 -m http.server -d web/dist).
#
# Installs what it needs: the wasm32-unknown-unknown target, and wasm-bindgen-cli at the
# version of the wasm-bindgen crate in Cargo.lock (the two must match exactly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=$ROOT/web/dist
MAX_WASM_BYTES=3000000

if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
fi

# The version locked for the crate: the first `version` after `name = "wasm-bindgen"`.
VERSION=$(awk '/^name = "wasm-bindgen"$/ { found = 1; next } found && /^version = / { gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
[ -n "$VERSION" ] || { echo "web/build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $VERSION" ]; then
  # --locked builds the CLI with its own lockfile; when the registry lacks a version that
  # lockfile names, the same CLI version is built from a fresh resolution instead. --force:
  # cargo may remember an install whose binary is gone or of another version.
  cargo install --force --locked wasm-bindgen-cli --version "$VERSION" ||
    cargo install --force wasm-bindgen-cli --version "$VERSION"
fi

cargo build -p kubenat-web --target wasm32-unknown-unknown --profile web
rm -rf "$DIST"
mkdir -p "$DIST"
wasm-bindgen --target web --no-typescript --out-dir "$DIST/pkg" \
  "$TARGET_DIR/wasm32-unknown-unknown/web/kubenat_web.wasm"
cp web/index.html web/style.css web/*.js "$DIST/"

WASM=$DIST/pkg/kubenat_web_bg.wasm
BYTES=$(wc -c < "$WASM")
GZIP_BYTES=$(gzip -9 -c "$WASM" | wc -c)
echo "web/dist: kubenat_web_bg.wasm $BYTES bytes, $GZIP_BYTES gzipped"
if [ "$BYTES" -gt "$MAX_WASM_BYTES" ]; then
  echo "web/build.sh: the wasm is over $MAX_WASM_BYTES bytes" >&2
  exit 1
fi
