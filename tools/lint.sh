#!/usr/bin/env bash
# Static checks of the Python sources: ruff (rules in pyproject.toml [tool.ruff.lint]).
# Needs the 'ci' extra (pip install -e '.[ci]'). Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m ruff --version
python -m ruff check --output-format concise .
