#!/usr/bin/env bash
# compile-elm.sh OUT APP...: compiles examples/APP/src/Main.elm with the Elm
# compiler from npm into OUT/APP.js (timers as a DEV build: it uses Debug.log).
# Needs Elm's package server, or ELM_HOME holding elm/core, elm/json and
# elm/time (with a registry.dat) for offline use.
set -euo pipefail
out=${1:?usage: compile-elm.sh OUT APP...}
shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
tools="$here/../target/elm-compiler"
elm="$tools/node_modules/@lydell/elm_linux_x64/elm"
if [ ! -x "$elm" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" @lydell/elm_linux_x64@0.19.1-1
fi
for app in "$@"; do
  mode=--optimize
  [ "$app" = timers ] && mode=
  (cd "$here/$app" && "$elm" make src/Main.elm $mode --output "$out/$app.js")
done
