#!/usr/bin/env bash
# Builds and runs examples/quickstart (the `quickstart` workflow preset), installing the
# Debian packages it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset quickstart
