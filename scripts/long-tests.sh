#!/usr/bin/env bash
# The long variants of the reliability suite: 20 SIGKILL rounds per backend, 5,000 random
# cross-tenant requests, 5 minutes per fuzz target, 500 schemathesis examples per operation,
# 200 random directory histories per source kind for the engine's model test.
set -euo pipefail
cd "$(dirname "$0")/.."
export SCIMD_LONG_TESTS=1
export SCIMD_MODEL_CASES=${SCIMD_MODEL_CASES:-200}
bash scripts/fuzz.sh 300
bash scripts/schemathesis.sh 500
bash scripts/test.sh
