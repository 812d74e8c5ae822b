#!/usr/bin/env bash
# Builds kiln and runs its tests (the `test` workflow preset), installing the Debian
# packages it needs first. Tests that need a GPU skip themselves where there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset test
