#!/usr/bin/env bash
# Regenerates proto/gen and fails when the committed code differs from what
# buf generates (coil's check-generate).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd proto && ../node_modules/.bin/buf generate)
if [ -n "$(git status --porcelain -- proto/gen)" ]; then
  echo "proto/gen is out of date with proto/hostnet; run 'npm run generate' and commit:" >&2
  git status --porcelain -- proto/gen >&2
  git --no-pager diff --stat -- proto/gen >&2
  exit 1
fi
echo "proto/gen is up to date"
