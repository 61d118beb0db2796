#!/usr/bin/env bash
# Installs the Debian packages luasync needs to build and test. Idempotent and
# non-interactive; skips apt entirely when everything is already installed.
#   bash scripts/install-deps.sh            build + test dependencies (python3 and node run test fixtures)
#   bash scripts/install-deps.sh --fuzz     also clang and its fuzzer runtime
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  libluajit2-5.1-dev libuv1-dev libcurl4-openssl-dev
  nlohmann-json3-dev libcli11-dev catch2
  python3 nodejs
)
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
