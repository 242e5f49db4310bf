#!/usr/bin/env bash
# Runs every test of the workspace: unit, conformance, end-to-end gRPC,
# CLI and doc tests. Real-backend engines add their installers here
# (apt-get when run as root) as they land; the embedded engines need none.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

cargo test --workspace --locked "$@"
