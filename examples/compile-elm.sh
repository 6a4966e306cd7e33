#!/usr/bin/env bash
# compile-elm.sh OUT APP...: compiles examples/APP/src/Main.elm with the Elm
# compiler from npm (installed into target/elm-compiler) into OUT/APP.js,
# with --optimize except timers (a DEV build: it uses Debug.log).
# Needs Elm's package server, or for offline use an ELM_HOME holding
# 0.19.1/packages/registry.dat and the packages' sources at
# 0.19.1/packages/elm/{core/1.0.5,json/1.1.3,time/1.0.0,bytes/1.0.8,
# http/2.0.0,file/1.0.5}/ (http, bytes and file for fetch: elm/http 2.0.0
# needs elm/file, which needs elm/time), e.g. each exported from a clone of
# its repository:
#
#   git -C elm-json archive 1.1.3 | tar x -C $ELM_HOME/0.19.1/packages/elm/json/1.1.3
#
# fixtures/compare.sh then checks the fixtures against what this wrote.
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
