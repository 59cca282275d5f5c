#!/usr/bin/env bash
# What a user gets from the runtime lock and `pip install .`: a fresh venv holding natlens and its
# runtime dependencies only. natlens must run (version, a small simulation read and analysed,
# the typing marker shipped) and no test tool may have come along.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/natlens-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/pip" --quiet --disable-pip-version-check)
"${pip[@]}" install --require-hashes -r requirements/runtime.lock
rm -rf build  # setuptools keeps copies of deleted modules there
"${pip[@]}" install --no-deps .
"${pip[@]}" check
bin="$work/venv/bin"
version=$("$bin/natlens" --version)
expected="natlens $("$bin/python" -c 'import natlens; print(natlens.__version__)')"
[ "$version" = "$expected" ] || { echo "natlens --version said '$version', not '$expected'" >&2; exit 1; }
"$bin/python" -c 'import importlib.resources as r; assert r.files("natlens").joinpath("py.typed").is_file()'
for tool in pytest hypothesis moto mypy ruff atheris pyspark pandas; do
    if "$bin/python" -c "import $tool" 2>/dev/null; then
        echo "the runtime install brought $tool, a development or optional package" >&2
        exit 1
    fi
done
cd "$work"
"$bin/natlens" simulate out --minutes 2 --seed 1 > /dev/null
"$bin/natlens" ingest out/flowlogs --case case > /dev/null
"$bin/natlens" inbound case --context out/context --format csv > inbound.csv
"$bin/natlens" topology --context out/context --format json > topology.json
"$bin/python" -c 'import json; assert json.load(open("topology.json"))["vpcs"]'
rows=$(($(wc -l < inbound.csv) - 1))
[ "$rows" -gt 0 ] || { echo "natlens inbound gave no rows from the installed package" >&2; exit 1; }
echo "check-install: $version from the runtime lock and 'pip install .': ingest, inbound ($rows verdicts) and topology run; no test tools"
