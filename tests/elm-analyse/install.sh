#!/usr/bin/env bash
# Installs the npm package elm-analyse@0.16.5 into $1/elm-analyse-0.16.5/package
# (git-ignored, under target/), unless it is already there. `npm pack` fetches
# the package's tarball alone (npm checks its integrity against the registry):
# the tests need only its compiled Elm app (dist/app/backend-elm.js) and its
# own Elm sources (the benchmark's workload), none of its dependencies, and no
# install script of it runs.
set -euo pipefail
dir=${1:?usage: install.sh DIR}
version=0.16.5
dest="$dir/elm-analyse-$version"
if [ -f "$dest/package/dist/app/backend-elm.js" ]; then
  exit 0
fi
mkdir -p "$dir"
# Unpack beside the destination and move it into place only when complete,
# so an interrupted install is never mistaken for a finished one.
tmp=$(mktemp -d "$dir/.elm-analyse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tarball=$(cd "$tmp" && npm pack --silent "elm-analyse@$version")
tar -xzf "$tmp/$tarball" -C "$tmp"
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/package" "$dest/package"
echo "elm-analyse $version installed in $dest/package"
