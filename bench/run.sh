#!/usr/bin/env bash
# One command for the whole benchmark:
#   bench/run.sh [small|small-disk|medium|large|latency|millions|tiny|all|scaling] [--runs N] [--tools a,b,...]
# Installs what is missing (Debian: nginx aria2 wget2 curl time; PyPI: the
# project's `bench` extra into .venv), then hands over to bench/bench.py,
# which makes the data, runs the servers and tools, and writes bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# nginx lives in /usr/sbin, which a non-login root shell may lack in PATH.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v aria2c >/dev/null || missing+=(aria2)
command -v wget2 >/dev/null || missing+=(wget2)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    # Debian starts a system nginx on :80 after install; ours runs on its own
    # port with its own config, so that one is irrelevant either way.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import downloader, requests, parfive, matplotlib, distributed' 2>/dev/null; then
    echo "bench: installing the project with its bench extra into .venv" >&2
    .venv/bin/pip install --quiet --disable-pip-version-check -e '.[bench]'
fi

export PATH="$PATH:/usr/sbin"
exec .venv/bin/python bench/bench.py "$@"
