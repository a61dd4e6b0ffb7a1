#!/usr/bin/env bash
# The full check: test dependencies, formatting, lints, all tests.
# Exits non-zero on the first failure. Runnable from any directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { echo; echo "==> $*"; }

step "install test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace --all-targets"
cargo test --workspace --all-targets

step "all checks passed"
