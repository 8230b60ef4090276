"""Inside the image, after smoke.sh's CLI calls: their JSON answers, and the data on /data."""

import json
import os
import stat
from pathlib import Path

ident = json.loads(Path("/tmp/identify.json").read_text())["results"][0]["faces"][0]
assert ident["person"]["name"] == "Barack Obama", ident
assert json.loads(Path("/tmp/verify.json").read_text())["same_person"] is True
assert json.loads(Path("/tmp/stranger.json").read_text())["results"][0]["faces"][0]["person"] is None
assert os.path.isfile("/data/facegate.db"), os.listdir("/data")
assert stat.S_IMODE(os.stat("/data").st_mode) == 0o700
print("CLI in the image: enrolled, identified, verified, a stranger not recognised; data in /data")
