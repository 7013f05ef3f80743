#!/usr/bin/env bash
# Rebuild the web phone's SIP library bundle (bridge/web/static/vendor/jssip.min.js) from the npm
# packages pinned in package-lock.json (JsSIP, bundled by esbuild). The bundle is committed so the
# bridge serves it with no Node.js and no CDN at run time.
#   scripts/build_webphone.sh           rebuild it
#   scripts/build_webphone.sh --check   rebuild and fail if it differs from the committed file (CI)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bundle=bridge/web/static/vendor/jssip.min.js
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
if [[ ${1:-} == --check ]] && ! git diff --quiet -- "$bundle"; then
  echo "build_webphone: $bundle differs from a fresh build of package-lock.json's JsSIP; run scripts/build_webphone.sh and commit it" >&2
  exit 1
fi
