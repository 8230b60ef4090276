"""Inside the image, as its default user: its own command (ENTRYPOINT + CMD) in the background,
and its own HEALTHCHECK command until it passes (it must fail, not hang, while serve starts).

Usage: healthcheck.py HEALTH_JSON (written by inspect_image.py)
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
assert spec["test"][0] == "CMD", spec
assert os.getuid() == 10001, os.getuid()
with open("/tmp/serve-default.log", "w") as log:
    server = subprocess.Popen(spec["command"], stdout=log, stderr=subprocess.STDOUT)
t0 = time.monotonic()
try:
    while subprocess.run(spec["test"][1:], capture_output=True, timeout=15).returncode != 0:
        if time.monotonic() - t0 > 120 or server.poll() is not None:
            sys.exit("the healthcheck never passed: " + Path("/tmp/serve-default.log").read_text()[-2000:])
        time.sleep(1)
    took = time.monotonic() - t0
    print(f"{' '.join(spec['command'])}: the image's HEALTHCHECK passed after {took:.1f} s")
finally:
    server.terminate()
    server.wait(30)
