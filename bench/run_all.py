"""`make bench`: every benchmark in turn; results land in bench/results/*.json.

LFW embeddings are cached in bench/.cache (delete it to recompute). Benchmarks that need
../shared skip cleanly when it is absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import CACHE, LFW

HERE = Path(__file__).parent


def run(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=HERE, check=True)


def main() -> None:
    if (LFW / "pairs.csv").is_file():
        for engine in ("facegate", "face_recognition"):
            if not (CACHE / f"lfw_{engine}_pairs.npz").exists():
                run("lfw_embeddings.py", "--engine", engine, "--set", "pairs")
        run("lfw_verification.py")
        if (CACHE / "lfw_facegate_all.npz").exists():
            run("lfw_backends.py")
        # The default embedder's accuracy (issue 22): caches of every photo, then the figures.
        for model in ("sface", "reid0095"):
            for name in ("lfw", "east_asian"):
                if not (CACHE / f"faces_{name}_{model}.npz").exists():
                    run("face_embeddings.py", "--set", name, "--model", model)
        run("templates.py", "--model", "sface")
        run("fair_calibration.py", "--model", "sface")
        run("open_set.py", "--model", "sface", "--weights", "0.2,1.0")
        run("verify_person.py", "--model", "sface", "--weight", "1.0")
        run("small_face_recognition.py")
        run("reembed_cost.py")
    else:
        print(f"SKIP LFW benchmarks: {LFW} not found")
    run("photo_throughput.py")
    run("embedder_speed.py")
    run("cnn_detector.py")
    run("search_latency.py")
    run("api_load.py")  # skips itself without Debian's wrk
    run("video_pipeline.py")  # skips itself without ../shared/videos
    run("privacy_ops.py")
    run("console_overhead.py")
    run("liveness_cost.py")  # skips itself without ../shared/pad
    run("planarity.py")  # skips itself without ../shared/pad and ../shared/videos


if __name__ == "__main__":
    main()
