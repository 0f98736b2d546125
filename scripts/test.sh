#!/usr/bin/env bash
# Builds castellan (Release, warnings as errors) and runs every test with CTest.
# The packages come from scripts/setup.sh; run that first on a new machine:
#
#   scripts/setup.sh && scripts/test.sh
#
# Environment:
#   BUILD_DIR    build folder (default: build, under the repository root)
#   JOBS         parallel compile jobs (default: the number of CPUs)
#   CTEST_JOBS   parallel tests (default: 2)
# Extra arguments are passed to ctest (e.g. -R config to run some tests only).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
ctest_jobs=${CTEST_JOBS:-2}

for tool in cmake ctest g++; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test.sh: $tool not found; run scripts/setup.sh first" >&2
        exit 1
    fi
done

echo "== configure $build_dir (Release, -Werror)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCASTELLAN_WERROR=ON -DCASTELLAN_SANITIZE=OFF

echo "== build ($jobs jobs)"
cmake --build "$build_dir" -j"$jobs"

echo "== test"
ctest --test-dir "$build_dir" --output-on-failure -j"$ctest_jobs" "$@"
