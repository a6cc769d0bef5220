#!/usr/bin/env bash
# Install ipycam, an independent virtual ONVIF camera, into its own venv for the peer test
# (tests/lab/test_ipycam_peer.py). Why a separate venv: ipycam pulls opencv-python and numpy
# (about 290 MB), and camaudit itself must not depend on them (reference/lab.md sections 1, 8.1).
#
# ipycam binds 0.0.0.0 and multicasts a WS-Discovery Hello on start: the test only ever runs it
# under `ip netns exec` inside a lab namespace, never in the host's namespace (lab.md section 13).
#
# Idempotent: a venv that already imports the pinned version is left alone.
# Usage: bash ci/ipycam-setup.sh [VENV_DIR]     (default /opt/camaudit-peers/ipycam)
# The test looks for the venv in $CAMAUDIT_IPYCAM_VENV, else /opt/camaudit-peers/ipycam.
set -euo pipefail

VENV="${1:-${CAMAUDIT_IPYCAM_VENV:-/opt/camaudit-peers/ipycam}}"
VERSION="1.3.0"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] &&
   "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('ipycam') != '$VERSION')" 2>/dev/null; then
    echo "ipycam $VERSION already in $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet "ipycam==$VERSION"
"$VENV/bin/python" -c "import ipycam; print('ipycam', ipycam.__file__)"
echo "ipycam $VERSION installed in $VENV"
