#!/usr/bin/env bash
# Builds castellan's Debian package from a Release build and prints its path:
#
#   scripts/package.sh                 # -> build/package/castellan_<version>-1_<arch>.deb
#   apt install ./build/package/castellan_*.deb
#
# The build folder is configured (Release, warnings as errors) if it is not yet,
# then only the castellan binary is built (a build made by scripts/test.sh is
# reused as it is). Needs dpkg-dev (dpkg-shlibdeps computes the Depends line);
# scripts/setup.sh installs it.
#
# Environment:
#   BUILD_DIR    build folder (default: build, under the repository root)
#   JOBS         parallel compile jobs (default: the number of CPUs)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

for tool in cmake cpack dpkg-shlibdeps; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "package.sh: $tool not found; run scripts/setup.sh first" >&2
        exit 1
    fi
done

if [[ ! -f $build_dir/CPackConfig.cmake ]]; then
    echo "== configure $build_dir (Release, -Werror)" >&2
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCASTELLAN_WERROR=ON -DCASTELLAN_SANITIZE=OFF >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
sanitize=$(sed -n 's/^CASTELLAN_SANITIZE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
if [[ $build_type != Release || $sanitize == ON ]]; then
    echo "package.sh: $build_dir is a $build_type build (CASTELLAN_SANITIZE=$sanitize); package a Release build without sanitizers" >&2
    exit 1
fi

echo "== build castellan ($jobs jobs)" >&2
cmake --build "$build_dir" -j"$jobs" --target castellan >&2

echo "== package" >&2
rm -f "$build_dir"/package/castellan_*.deb
(cd "$build_dir" && cpack -G DEB) >&2
ls "$build_dir"/package/castellan_*.deb
