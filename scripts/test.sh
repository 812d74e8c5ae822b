#!/usr/bin/env bash
# Builds kiln and runs its tests (the `test` workflow preset), then builds the unit, cache
# and fuzz tests with AddressSanitizer + UndefinedBehaviorSanitizer and runs them, fuzzing
# each parser for half a minute (the `sanitize` workflow preset), installing the Debian
# packages it needs first. Tests that need a GPU skip themselves where there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset test
cmake --workflow --preset sanitize
