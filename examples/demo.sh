#!/usr/bin/env bash
# The main job on embedded defaults (SQLite, in-process index): enrol four people from
# photos, identify them in other photos (one with three faces, one of them not enrolled),
# verify two photos, recognise them in a video clip, and answer a subject access request.
# Everything lands under build/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export FACEGATE_DATA_DIR="$PWD/build/demo"
rm -rf "$FACEGATE_DATA_DIR"
mkdir -p -m 700 "$FACEGATE_DATA_DIR"  # owner-only, as facegate makes it

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "facegate enroll-dir examples/gallery (one folder per person, consent recorded)"
facegate enroll-dir examples/gallery --consent-purpose "facegate demo" --consent-expires 30d --consent-by demo

step "facegate people list"
facegate people list

step "facegate identify (exit code 5: someone was not recognised. The child is not enrolled: closest 0.23 against the 0.391 that holds the 1:1 rate at 1e-3 between two women as between two men; Alex Lacamoire's second photo, a near miss with dlib's model, scores 0.54 with SFace)"
set +e
facegate identify examples/probes/obama.jpg examples/probes/biden.jpg examples/probes/alex-lacamoire2.jpg \
  examples/probes/two_people.jpg examples/probes/obama_and_biden.jpg --annotate "$FACEGATE_DATA_DIR/annotated"
code=$?
set -e
[ "$code" -eq 0 ] || [ "$code" -eq 5 ] || exit "$code"

step "facegate verify (1:1): two different photos of Barack Obama"
facegate verify examples/probes/obama.jpg examples/gallery/Barack_Obama/obama2.jpg

step "facegate detect --annotate: boxes, landmarks and names"
facegate detect examples/probes/two_people.jpg --annotate "$FACEGATE_DATA_DIR/two_people.annotated.jpg"

step "facegate watch: a camera clip, decisions as they happen (no door is opened without --door)"
facegate watch tests/data/videos/hamilton_clip.mp4 --annotate "$FACEGATE_DATA_DIR/hamilton.annotated.mp4"

step "facegate privacy policy: the retention schedule in force"
facegate privacy policy

step "facegate people export: everything held about one person (subject access)"
person=$(facegate people list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["people"][0]["id"])')
facegate people export "$person" --out "$FACEGATE_DATA_DIR/subject-access.zip"

step "done"
echo "annotated images: $FACEGATE_DATA_DIR/annotated/ and $FACEGATE_DATA_DIR/two_people.annotated.jpg"
echo "annotated video: $FACEGATE_DATA_DIR/hamilton.annotated.mp4; subject access zip: $FACEGATE_DATA_DIR/subject-access.zip"
