#!/usr/bin/env bash
# Re-captures the golden bytes (see capture.py) on Apache Kafka 4.4 (scripts/kafka.sh) from the
# Java client (scripts/java-peer.sh), confluent-kafka and kafka-python (installed into a cached
# venv). About 30 s once the broker, the Java peer and the venv are installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${KAFKIT_CACHE:-$HOME/.cache/kafkit}/pyenv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/../python-clients.txt"
exec "$venv/bin/python" "$here/capture.py"
