#!/bin/sh
# Install the peers the core benchmarks compare luasync against (bench/run.py):
# Go, OpenResty's LuaJIT, Node.js, GNU time (peak RSS), hyperfine, lua-cjson.
# Idempotent and non-interactive: packages already installed are left alone.
#
# Note: luajit2 is OpenResty's LuaJIT branch (the one luasync links against) and
# provides the `luajit` command. It conflicts with Debian's `luajit` package,
# which apt removes if it is installed.
set -eu

PACKAGES="golang-go luajit2 nodejs time hyperfine lua-cjson libcjson-dev"

missing=""
for pkg in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  echo "bench dependencies already installed: $PACKAGES"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $missing
