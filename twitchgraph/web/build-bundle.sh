#!/usr/bin/env bash
# Rebuilds src/twitchgraph/web/vendor/sigma-graphology.min.js from the npm registry's sigma and
# graphology (versions pinned in web/package.json), with their licences and a VERSIONS file.
# Usage: bash web/build-bundle.sh   (needs node + npm; node_modules stays out of git)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/../src/twitchgraph/web/vendor"
cd "$here"
npm install --no-audit --no-fund --silent
mkdir -p "$vendor"
npx esbuild entry.js --bundle --minify --format=iife --target=es2019 \
  --legal-comments=none --outfile="$vendor/sigma-graphology.min.js"
cp node_modules/sigma/LICENSE.txt "$vendor/LICENSE-sigma.txt"
cp node_modules/graphology/LICENSE.txt "$vendor/LICENSE-graphology.txt"
# events and graphology-utils are bundled as sigma's dependencies.
cp node_modules/events/LICENSE "$vendor/LICENSE-events.txt"
cp node_modules/graphology-utils/LICENSE.txt "$vendor/LICENSE-graphology-utils.txt"
{
  echo "# Bundled by web/build-bundle.sh; do not edit by hand."
  for pkg in sigma graphology graphology-utils events esbuild; do
    echo "$pkg $(node -p "require('./node_modules/$pkg/package.json').version")"
  done
} > "$vendor/VERSIONS.txt"
echo "wrote $vendor/sigma-graphology.min.js ($(wc -c < "$vendor/sigma-graphology.min.js") bytes)"
