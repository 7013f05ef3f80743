#!/usr/bin/env bash
# Rebuild the browser libraries under bridge/web/static/vendor/ from the npm packages pinned in
# package-lock.json: the web phone's SIP library (JsSIP, bundled by esbuild into jssip.min.js) and
# the dashboard's charts (uPlot, copied from its release build). They are committed so the bridge
# serves them with no Node.js and no CDN at run time.
#   scripts/build_webphone.sh           rebuild it
#   scripts/build_webphone.sh --check   rebuild and fail if it differs from the committed file (CI)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bundle=bridge/web/static/vendor
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
if [[ ${1:-} == --check ]] && ! git diff --quiet -- "$bundle"; then
  echo "build_webphone: $bundle differs from a fresh build of package-lock.json's packages; run scripts/build_webphone.sh and commit it" >&2
  exit 1
fi
