#!/usr/bin/env bash
# Installs what castellan needs on Debian 12 (bookworm), from Debian's own
# packages only: the build dependencies, and the tools the tests, the benchmark
# and the demo use. Safe to run again: packages already installed are left as
# they are, and apt is not even asked when nothing is missing.
#
# Run it as root, or as a user that may use sudo.
#
# Boost: Debian 12 carries 1.74 as its default and 1.81 beside it. castellan
# needs 1.81 (libboost1.81-dev). Never add an unversioned libboost-*-dev here:
# it would pull 1.74's headers in next to 1.81's.
set -euo pipefail

packages=(
    # build
    g++ make cmake ccache
    libboost1.81-dev libssl-dev nlohmann-json3-dev libfmt-dev catch2
    # tests, benchmark, demo
    python3 openssl iproute2 procps
    haproxy iperf3 nginx curl netcat-openbsd testssl.sh wrk
    python3-selenium chromium chromium-driver
    # test_outlook_anywhere.py: impacket's RPC over HTTP v2 client, a real Outlook Anywhere client
    python3-impacket
    # test_gateway.py, test_transparent.py, test_ha_pair.py: contrib/gateway.nft and
    # transparent-routing.sh (nft), contrib/keepalived.conf (keepalived; its
    # health check uses curl, listed above)
    nftables keepalived
    # the Debian package (scripts/package.sh, test_deb.py): dpkg-shlibdeps computes its Depends
    dpkg-dev
    # fuzzing the ClientHello parser (scripts/fuzz.sh); libclang-rt-14-dev holds
    # libFuzzer's and the sanitizers' runtimes, only recommended by clang-14
    clang-14 libfuzzer-14-dev libclang-rt-14-dev
)

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "setup.sh: run me as root, or install sudo" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup.sh: this script is for Debian 12 (apt-get and dpkg-query not found)" >&2
    exit 1
fi
if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    version_id=$(. /etc/os-release && echo "${VERSION_ID:-}")
    if [[ $version_id != 12 ]]; then
        echo "setup.sh: warning: written for Debian 12, this is $(. /etc/os-release && echo "${PRETTY_NAME:-unknown}")" >&2
    fi
fi

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup.sh: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "setup.sh: installing ${missing[*]}"

# Installing haproxy, nginx, iperf3 or keepalived would start their system services (nginx
# on port 80); we only want the programs. A policy-rc.d that answers 101 keeps
# them from starting during this install; one that is already there is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=0
remove_policy() {
    if [[ $made_policy -eq 1 ]]; then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap remove_policy EXIT
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# put here by castellan scripts/setup.sh during its install\nexit 101\n' |
        "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=1
fi

apt_env=(env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a)
"${as_root[@]}" "${apt_env[@]}" apt-get update -q
"${as_root[@]}" "${apt_env[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"

echo "setup.sh: done"
