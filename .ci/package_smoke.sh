#!/usr/bin/env bash
# Build the wheel and the sdist, check their metadata, install the wheel into a fresh virtualenv
# with no source tree beside it, and use it as a user would: init, enrol, identify, verify, and
# `serve` answering an enrolment and an identification over HTTP. Prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="$(mktemp -d /tmp/facegate-package.XXXXXX)"
trap 'kill "${SERVE_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"

echo "== package: build wheel and sdist"
.venv/bin/python -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
.venv/bin/twine check --strict "$WORK"/dist/*
WHEEL="$(ls "$WORK"/dist/facegate-*.whl)"
echo "wheel: $(basename "$WHEEL") $(du -h "$WHEEL" | cut -f1)"
# The models and their licence notices ship; no tests and nothing of ../shared do.
.venv/bin/python - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = [f"facegate/data/{m}/{f}" for m in ("sface", "yunet", "minifasnet", "reid0095") for f in ("LICENSE", "SOURCE.txt")]
missing = [n for n in need if n not in names]
stray = [n for n in names if n.startswith(("tests/", "bench/", "shared/")) or "east_asian" in n or "/pad/" in n]
assert not missing and not stray, (missing, stray)
assert any(n.endswith(".onnx") for n in names), "no model in the wheel"
print(f"wheel holds {len(names)} files, models and licences included, no tests")
PY

echo "== package: install into a fresh virtualenv (no source tree on its path)"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip >"$WORK/pip.log" 2>&1
"$WORK/venv/bin/python" -m pip install -q "$WHEEL" >>"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log"; exit 1; }
cp -r "$ROOT/examples/gallery/Barack_Obama" "$ROOT/examples/probes/obama.jpg" "$ROOT/examples/probes/biden.jpg" "$WORK/"
cd "$WORK"  # nothing of the checkout is importable from here
export FACEGATE_DATA_DIR="$WORK/data" FACEGATE_SECRET_KEY="package-smoke-test-secret-key-0123456789"
unset FACEGATE_DATABASE_URL
FG="$WORK/venv/bin/facegate"
"$WORK/venv/bin/python" -c "import facegate, sys; assert facegate.__file__.startswith('$WORK/venv'), facegate.__file__"
"$FG" init --json >/dev/null
consent=(--consent-purpose "package smoke test" --consent-expires 1d --consent-by ci)
"$FG" enroll "Barack Obama" Barack_Obama/obama2.jpg "${consent[@]}" --json >enrol.json
"$FG" identify obama.jpg --json >identify.json
"$FG" verify obama.jpg Barack_Obama/obama2.jpg --json >verify.json
set +e; "$FG" identify biden.jpg --json >stranger.json; code=$?; set -e
[ "$code" -eq 5 ] || { echo "a stranger's photo: exit $code, expected 5 (not recognised)"; exit 1; }
"$WORK/venv/bin/python" - <<'PY'
import json
ident = json.load(open("identify.json"))["results"][0]["faces"][0]
assert ident["person"]["name"] == "Barack Obama", ident
assert json.load(open("verify.json"))["same_person"] is True
assert json.load(open("stranger.json"))["results"][0]["faces"][0]["person"] is None
print("CLI from the wheel: enrolled, identified, verified, a stranger not recognised")
PY

echo "== package: serve from the wheel"
PORT="$("$WORK/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
key() { "$FG" keys create "$1" --role "$1" --json | "$WORK/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }
ADMIN="$(key admin)" OPERATOR="$(key operator)"
"$FG" serve --port "$PORT" >serve.log 2>&1 &
SERVE_PID=$!
"$WORK/venv/bin/python" - "$PORT" "$ADMIN" "$OPERATOR" <<'PY'
import base64, datetime as dt, sys, time
import httpx
url = f"http://127.0.0.1:{sys.argv[1]}"
admin, operator = ({"Authorization": f"Bearer {t}"} for t in sys.argv[2:4])
for _ in range(300):
    try:
        if httpx.get(url + "/readyz", timeout=1).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.2)
else:
    sys.exit("serve did not become ready: " + open("serve.log").read()[-2000:])
b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()
consent = {"purpose": "smoke", "recorded_by": "ci", "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()}
r = httpx.post(url + "/v1/people", json={"name": "Joe Biden", "consent": consent, "images_base64": [b64("biden.jpg")]}, headers=admin, timeout=120)
assert r.status_code == 201, r.text
r = httpx.post(url + "/v1/identify", files={"file": open("biden.jpg", "rb")}, headers=operator, timeout=120)
assert r.status_code == 200 and r.json()["faces"][0]["person"]["name"] == "Joe Biden", r.text
print("serve from the wheel: /readyz, an enrolment and an identification over HTTP")
PY
echo "package smoke test passed"
