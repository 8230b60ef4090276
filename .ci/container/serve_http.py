"""Inside the image, with `facegate serve` started on PORT: /readyz, /healthz, an enrolment with
an admin key and an identification with an operator key, over loopback HTTP.

Usage: serve_http.py PORT ADMIN_KEY OPERATOR_KEY
"""

import base64
import datetime as dt
import sys
import time
from pathlib import Path

import httpx

url = f"http://127.0.0.1:{sys.argv[1]}"
admin, operator = ({"Authorization": f"Bearer {t}"} for t in sys.argv[2:4])
t0 = time.monotonic()
for _ in range(600):
    try:
        if httpx.get(url + "/readyz", timeout=1).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.2)
else:
    sys.exit("serve did not become ready: " + Path("/tmp/serve.log").read_text()[-2000:])
print(f"serve ready in {time.monotonic() - t0:.1f} s")
assert httpx.get(url + "/healthz", timeout=5).json() == {"status": "ok"}

photo = base64.b64encode(Path("biden.jpg").read_bytes()).decode()
expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
consent = {"purpose": "container smoke test", "recorded_by": "ci", "expires_at": expires}
person = {"name": "Joe Biden", "consent": consent, "images_base64": [photo]}
r = httpx.post(url + "/v1/people", json=person, headers=admin, timeout=120)
assert r.status_code == 201, r.text
with open("biden.jpg", "rb") as f:
    r = httpx.post(url + "/v1/identify", files={"file": f}, headers=operator, timeout=120)
assert r.status_code == 200 and r.json()["faces"][0]["person"]["name"] == "Joe Biden", r.text
print("serve in the image: /readyz, an enrolment and an identification over loopback HTTP")
