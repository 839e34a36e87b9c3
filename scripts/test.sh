#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (SQLite and PostgreSQL), then the browser
# and protocol suites in tests/e2e against the freshly built binary.
# Needs: PostgreSQL on 127.0.0.1:5432 (or TESSERA_TEST_POSTGRES_URL), Node.js 20+, and
# Debian's chromium at /usr/bin/chromium (or CHROMIUM_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building"
cargo build --workspace --all-targets --locked

echo "==> Rust tests (SQLite and PostgreSQL)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "==> tessera-verify builds on its own and documents every public item"
cargo build -p tessera-verify --locked
RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc -p tessera-verify --no-deps --locked

echo "==> browser and protocol tests (tests/e2e)"
cd tests/e2e
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm test   # the harness runs ../../target/debug/tessera (or $TESSERA_BIN)
