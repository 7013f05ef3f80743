#!/usr/bin/env bash
# Make a self-signed certificate for Asterisk's WSS (WebRTC) server, for local use.
#   scripts/make_cert.sh DIR [HOST ...]     (default hosts: localhost 127.0.0.1)
# Then: bridge up --tls-cert DIR/cert.pem --tls-key DIR/key.pem, or point FreePBX's
# http.conf tlscertfile/tlsprivatekey at them. Browsers must be told to trust it once (open
# https://HOST:8089/ws and accept) - use a real certificate for anything beyond a lab.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:?usage: scripts/make_cert.sh DIR [HOST ...]}
shift
exec "$repo/.venv/bin/python" -c '
import sys
from pathlib import Path
from bridge.pbx.certs import self_signed
pair = self_signed(Path(sys.argv[1]), sys.argv[2:] or None)
print(f"certificate {pair.cert_file}\nkey         {pair.key_file}")
' "$dir" "$@"
