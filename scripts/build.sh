#!/usr/bin/env bash
# Configures and builds luasync with CMake + Ninja.
#   bash scripts/build.sh                 -> build/luasync (RelWithDebInfo)
#   BUILD_DIR=build-asan bash scripts/build.sh -DLUASYNC_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${BUILD_DIR:-build}"
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
cmake --build "$dir"
