#!/bin/sh
# Inside the image, as its user (10001), in /smoke (this folder and three photos of examples/),
# with FACEGATE_DATA_DIR=/data, the volume: the CLI as a user runs it, then `facegate serve` in
# the background and serve_http.py's requests to it over loopback.
set -eu
cd /smoke
[ "$(id -u)" = 10001 ] || { echo "running as $(id -u), not 10001"; exit 1; }
[ "$FACEGATE_DATA_DIR" = /data ] || { echo "FACEGATE_DATA_DIR=$FACEGATE_DATA_DIR"; exit 1; }
[ "$(command -v facegate)" = /opt/facegate/bin/facegate ] || { echo "facegate is $(command -v facegate)"; exit 1; }
facegate init --json >/tmp/init.json
consent="--consent-purpose container-smoke-test --consent-expires 1d --consent-by ci"
# shellcheck disable=SC2086
facegate enroll "Barack Obama" Barack_Obama/obama2.jpg $consent --json >/tmp/enrol.json
facegate identify obama.jpg --json >/tmp/identify.json
facegate verify obama.jpg Barack_Obama/obama2.jpg --json >/tmp/verify.json
set +e; facegate identify biden.jpg --json >/tmp/stranger.json; code=$?; set -e
[ "$code" -eq 5 ] || { echo "a stranger's photo: exit $code, expected 5 (not recognised)"; exit 1; }
python check_cli.py

key() { facegate keys create "$1" --role "$1" --json | python -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }
ADMIN="$(key admin)"
OPERATOR="$(key operator)"
PORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
facegate serve --host 127.0.0.1 --port "$PORT" >/tmp/serve.log 2>&1 &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null || true' EXIT
python serve_http.py "$PORT" "$ADMIN" "$OPERATOR"
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
trap - EXIT
