#!/usr/bin/env bash
# Fuzzes, with libFuzzer, what castellan parses straight from untrusted clients:
# the TLS ClientHello parser (tls/client_hello.cpp), the persistence cookie's
# codec (persistence/cookie_codec.cpp), and the HTTP request head checks and
# rewriting with the chunked decoder (proxy/http_head.cpp, chunked_decoder.cpp),
# the dcerpc health check's reply scan (healthcheck/dcerpc_bind.cpp), and the
# Outlook Anywhere channel reader (persistence/rts_channel_start.cpp).
#
#   scripts/fuzz.sh [--skip-if-missing] [SECONDS]
#
# Builds each fuzz/NAME_fuzz.cpp with clang++-14 -fsanitize=fuzzer,address,
# undefined into build-fuzz/, then runs it for SECONDS (default 60) starting from
# a copy of fuzz/corpus/NAME/: the inputs it finds go to a temporary folder,
# never into the repository. Exits non-zero when a fuzzer finds a crash, a broken
# property or a slow input, after printing that input in hex; the input is also
# kept in build-fuzz/artifacts/ to reproduce it with `build-fuzz/NAME_fuzz FILE`.
#
# Needs Debian's clang-14, libfuzzer-14-dev and libclang-rt-14-dev (scripts/setup.sh
# installs them). Without them it fails, or with --skip-if-missing (as CI runs it)
# says why it skipped and exits 0.
set -euo pipefail

skip_if_missing=0
if [[ ${1:-} == --skip-if-missing ]]; then
    skip_if_missing=1
    shift
fi
seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -eq 0 ]]; then
    echo "usage: scripts/fuzz.sh [--skip-if-missing] [SECONDS]" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

clang=clang++-14
missing() {
    if [[ $skip_if_missing -eq 1 ]]; then
        echo "fuzz.sh: skipped: $1 (install clang-14 libfuzzer-14-dev libclang-rt-14-dev)"
        exit 0
    fi
    echo "fuzz.sh: $1 (install clang-14 libfuzzer-14-dev libclang-rt-14-dev: scripts/setup.sh)" >&2
    exit 1
}
command -v "$clang" >/dev/null 2>&1 || missing "$clang not found"
runtime="$("$clang" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
[[ -f $runtime ]] || missing "libFuzzer's runtime $runtime not found"

build=build-fuzz
mkdir -p "$build"
failed=0

# fuzz_target NAME MAX_LEN DICT SOURCES...: builds $build/NAME_fuzz from SOURCES and
# fuzzes a temporary copy of fuzz/corpus/NAME for $seconds.
fuzz_target() {
    local name=$1 max_len=$2 dict=$3
    shift 3
    local binary=$build/${name}_fuzz
    echo "fuzz.sh: building $binary"
    "$clang" -std=c++20 -O1 -g -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Werror -I. \
        "$@" -o "$binary"

    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/castellan-fuzz.XXXXXX")
    mkdir "$work/corpus" "$work/artifacts"
    cp "fuzz/corpus/$name"/* "$work/corpus/"
    local options=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -use_value_profile=1
                   -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/")
    [[ -n $dict ]] && options+=(-dict="$dict")

    echo "fuzz.sh: running $name for $seconds s on a copy of fuzz/corpus/$name ($(ls "$work/corpus" | wc -l) seeds)"
    set +e
    timeout --kill-after=10 $((seconds + 120)) "$binary" "$work/corpus" "${options[@]}" \
        2>&1 | awk '/^###### Recommended dictionary/ { skip = 1 }
                    !skip && !/^#[0-9]+[[:space:]]+(NEW|REDUCE)[[:space:]]/ { print; fflush() }
                    /^###### End of recommended dictionary/ { skip = 0 }'
    local status=${PIPESTATUS[0]}
    set -e

    local found=("$work"/artifacts/*)
    if [[ $status -ne 0 || -e ${found[0]} ]]; then
        echo "fuzz.sh: $name FAILED (fuzzer exit status $status)"
        mkdir -p "$build/artifacts"
        for artifact in "${found[@]}"; do
            [[ -e $artifact ]] || continue
            cp "$artifact" "$build/artifacts/"
            echo "fuzz.sh: input $build/artifacts/$(basename "$artifact") ($(stat -c %s "$artifact") bytes), in hex:"
            od -An -tx1 -v "$artifact"
        done
        failed=1
    else
        echo "fuzz.sh: $name: no crash in $seconds s; $(ls "$work/corpus" | wc -l) inputs in the corpus at the end (discarded)"
    fi
    rm -rf "$work"
}

# The ClientHello parser (passthrough reads it from untrusted clients) and the
# persistence cookie's codec (every http request's Cookie field reaches it).
fuzz_target client_hello 16384 fuzz/client_hello.dict tls/client_hello.cpp fuzz/client_hello_fuzz.cpp
fuzz_target cookie 1024 "" persistence/cookie_codec.cpp fuzz/cookie_fuzz.cpp
# The request head checks and rewriting, and the chunked decoder: every http
# request passes through them.
fuzz_target http_message 8192 fuzz/http_message.dict proxy/http_head.cpp proxy/chunked_decoder.cpp \
    fuzz/http_message_fuzz.cpp -lfmt
# The dcerpc health check's reply scan: whatever a real server's RPC port answers.
fuzz_target dcerpc_reply 8192 "" healthcheck/dcerpc_bind.cpp fuzz/dcerpc_reply_fuzz.cpp
# The Outlook Anywhere channel reader (rpc_http): the first body bytes of every
# RPC_IN_DATA / RPC_OUT_DATA request.
fuzz_target rts_channel_start 1024 "" persistence/rts_channel_start.cpp persistence/stable_hash.cpp \
    fuzz/rts_channel_start_fuzz.cpp
exit $failed
