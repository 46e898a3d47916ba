#!/usr/bin/env bash
# Install everything and run the demo clinic at http://127.0.0.1:8000 (SQLite, no services needed).
# Extra arguments go to `tsunagu demo`, e.g. `bash scripts/demo.sh --port 8080`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec tsunagu demo "$@"
