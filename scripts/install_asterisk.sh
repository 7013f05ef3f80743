#!/usr/bin/env bash
# Install Asterisk (Debian sid packages) into a private prefix without touching the host.
#
# Debian 12 has no asterisk package and sid's libraries need a newer glibc than the host's,
# so we unpack sid's asterisk and every library it needs (glibc included) into PREFIX/root
# and run the binary through sid's own dynamic loader. The host's /etc/apt and dpkg status
# are never modified. Idempotent: a second run with a complete prefix returns at once.
#
# Usage: scripts/install_asterisk.sh [PREFIX]
#   PREFIX defaults to $BRIDGE_CACHE/asterisk (BRIDGE_CACHE defaults to ~/.cache/asterisk-ai-bridge).
# Result: PREFIX/bin/asterisk, a wrapper that runs the private build with any arguments.
set -euo pipefail

cache=${BRIDGE_CACHE:-$HOME/.cache/asterisk-ai-bridge}
prefix=${1:-$cache/asterisk}
stamp=$prefix/.installed-v1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -f $stamp && -x $prefix/bin/asterisk ]]; then
  echo "asterisk: already installed in $prefix"
  exit 0
fi

echo "asterisk: installing Debian sid packages into $prefix"
rm -rf "$prefix/root" "$prefix/bin"
mkdir -p "$prefix"/{apt/state/lists/partial,apt/cache/archives/partial,apt/etc/preferences.d,root,bin}
apt_dir=$prefix/apt
: >"$apt_dir/state/status"
cat >"$apt_dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
SRC

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
  -o "Dir::State=$apt_dir/state"
  -o "Dir::State::status=$apt_dir/state/status"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Acquire::Check-Valid-Until=false"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=amd64"
  -o "Debug::NoLocking=true"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
apt-get "${apt_opts[@]}" -y -qq install --download-only --no-install-recommends asterisk

for deb in "$apt_dir"/cache/archives/*.deb; do
  dpkg-deb -x "$deb" "$prefix/root"
done

loader=$prefix/root/lib64/ld-linux-x86-64.so.2
[[ -e $loader ]] || loader=$prefix/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
if [[ ! -e $loader ]]; then
  echo "asterisk: sid's dynamic loader is missing from $prefix/root (libc6 not downloaded?)" >&2
  exit 1
fi
libpath=$prefix/root/lib/x86_64-linux-gnu:$prefix/root/usr/lib/x86_64-linux-gnu
libpath=$libpath:$prefix/root/usr/lib/x86_64-linux-gnu/pulseaudio:$prefix/root/usr/lib

cat >"$prefix/bin/asterisk" <<WRAP
#!/bin/sh
# Runs the private Asterisk build through sid's own loader (host glibc is too old for it).
exec "$loader" --library-path "$libpath" "$prefix/root/usr/sbin/asterisk" "\$@"
WRAP
chmod +x "$prefix/bin/asterisk"

# Asterisk's modules live in a fixed path compiled into the binary's default asterisk.conf;
# our rendered asterisk.conf points astmoddir here explicitly.
ls "$prefix/root/usr/lib/x86_64-linux-gnu/asterisk/modules/chan_pjsip.so" >/dev/null
"$prefix/bin/asterisk" -V
rm -rf "$apt_dir/cache/archives"/*.deb
touch "$stamp"
echo "asterisk: installed in $prefix"
