#!/usr/bin/env bash
# One command for the whole benchmark:
#   bench/run.sh [SELECTION[,SELECTION...]] [--runs N] [--tools a,b,...]
# SELECTION: small, small-disk, medium, large, latency, millions, tiny, all,
# scaling, processes, throttled, large-disk, medium-tls, large-tls, bigfiles.
# Installs what is missing (Debian: nginx aria2 wget2 curl time openssl;
# PyPI: the project's `bench` extra into .venv), then hands over to
# bench/bench.py, which makes the data, runs the servers and tools, and
# writes bench/results/.
# BENCH_VENV=DIR: use that venv instead of ./.venv; nothing is installed
# into it (it may be shared), a missing package is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# nginx lives in /usr/sbin, which a non-login root shell may lack in PATH.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v aria2c >/dev/null || missing+=(aria2)
command -v wget2 >/dev/null || missing+=(wget2)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    # Debian starts a system nginx on :80 after install; ours runs on its own
    # port with its own config, so that one is irrelevant either way.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

imports='import requests, parfive, pypdl, matplotlib, distributed'
if [ -n "${BENCH_VENV:-}" ]; then
    venv=$BENCH_VENV
    if ! "$venv/bin/python" -c "$imports" 2>/dev/null; then
        echo "bench: $venv lacks part of the bench extra ($imports); install it there" >&2
        exit 2
    fi
else
    venv=.venv
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if ! .venv/bin/python -c "import downloader; $imports" 2>/dev/null; then
        echo "bench: installing the project with its bench extra into .venv" >&2
        .venv/bin/pip install --quiet --disable-pip-version-check -e '.[bench]'
    fi
fi

export PATH="$PATH:/usr/sbin"
exec "$venv/bin/python" bench/bench.py "$@"
