#!/usr/bin/env bash
# Build the container image from the Containerfile on a Debian bookworm base made here (no
# registry is reachable in CI) and use it as a user would: as its non-root user, with the data on
# the /data volume, init, enrol, identify, verify, a stranger not recognised, and `serve`
# answering /readyz, an enrolment and an identification over loopback HTTP; its own HEALTHCHECK
# against its own command; `serve` on the CI's PostgreSQL and MQTT broker configured as
# compose.yaml does (Home Assistant discovery); compose.yaml's settings. Then check the image
# itself: non-root, labels, healthcheck, no compiler, pip cache, wheels, tests, bench or
# ../shared data inside. Prints the time of each step (docs/deployment.md: cold about 3 min,
# warm under 1 min). Run as root: `bash .ci/container_smoke.sh` (`make container`).
#
# The base (debootstrap, about a minute) is cached in buildah's storage as $BASE_IMAGE, labelled
# with a hash of how it was made; it is made again only when that changes (or with
# FACEGATE_CI_REBUILD_BASE=1). The image build uses buildah's layer cache; the untagged images
# of earlier builds are pruned at the end. Python checks: .ci/container/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BASE_IMAGE="${FACEGATE_CI_BASE_IMAGE:-localhost/facegate-ci-base:bookworm}"
IMAGE="${FACEGATE_CI_IMAGE:-localhost/facegate:ci}"
BUILD_IMAGE="${FACEGATE_CI_BUILD_IMAGE:-localhost/facegate-build:ci}"
SMOKE_CTR=facegate-ci-smoke
BASE_CTR=facegate-ci-base-work
WORK="$(mktemp -d /tmp/facegate-container.XXXXXX)"
T0=$(date +%s)

cleanup() {
  local rc=$?
  for c in "$SMOKE_CTR" "$BASE_CTR"; do
    buildah rm "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
  echo "== container: total $(($(date +%s) - T0)) s (exit $rc)"
}
trap cleanup EXIT

step_start=0
step() { step_start=$(date +%s); echo "== container: $*"; }
took() { echo "   ($(($(date +%s) - step_start)) s)"; }

[ "$(id -u)" -eq 0 ] || { echo "run as root (buildah with chroot isolation, debootstrap)"; exit 2; }
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y buildah debootstrap"; exit 2; }
done
# Leftovers of an interrupted run.
for c in "$SMOKE_CTR" "$BASE_CTR"; do buildah rm "$c" >/dev/null 2>&1 || true; done

# --- the base: Debian bookworm with Debian's python3 (3.11), venv and pip --------------------
# The mirror the host's apt uses (CI reaches only Debian's mirrors and PyPI).
mirror() {
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
    | grep -E '/debian/?$' | head -1 || true)"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb +(\[[^]]*\] +)?https?://[^ ]+ +bookworm +' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -1 || true)"
  echo "${FACEGATE_CI_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}
MIRROR="$(mirror)"
# shellcheck disable=SC2054  # --include takes a comma-separated list
DEBOOTSTRAP_ARGS=(--variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates
  bookworm "$WORK/rootfs" "$MIRROR")
# The cache key: how the base is made (the rootfs path is a fresh temporary one each run).
BASE_KEY="$(printf '%s\n' v1 "${DEBOOTSTRAP_ARGS[@]/#$WORK/}" | sha256sum | cut -c1-16)"
have_key="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.facegate.ci.base-key"}}' \
  "$BASE_IMAGE" 2>/dev/null || true)"

if [ "$have_key" = "$BASE_KEY" ] && [ "${FACEGATE_CI_REBUILD_BASE:-0}" != 1 ]; then
  echo "== container: base $BASE_IMAGE cached (key $BASE_KEY)"
else
  step "base: debootstrap bookworm minbase from $MIRROR (key $BASE_KEY)"
  debootstrap "${DEBOOTSTRAP_ARGS[@]}" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log"; exit 1; }
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/log/*.log
  took
  step "base: import into buildah as $BASE_IMAGE"
  buildah from --name "$BASE_CTR" scratch >/dev/null
  mnt="$(buildah mount "$BASE_CTR")"
  tar -C "$WORK/rootfs" --numeric-owner --xattrs -cf - . | tar -C "$mnt" --numeric-owner --xattrs -xf -
  buildah umount "$BASE_CTR" >/dev/null
  rm -rf "$WORK/rootfs"
  buildah config --os linux --arch amd64 --cmd /bin/bash \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label io.facegate.ci.base-key="$BASE_KEY" --label io.facegate.ci.base="debootstrap ${DEBOOTSTRAP_ARGS[*]/#$WORK/}" \
    "$BASE_CTR"
  buildah commit -q --rm "$BASE_CTR" "$BASE_IMAGE" >/dev/null
  took
fi
buildah run --isolation chroot "$(buildah from -q --name "$SMOKE_CTR" "$BASE_IMAGE")" -- \
  python3 -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11), sys.version; print("base python", sys.version.split()[0])'
buildah rm "$SMOKE_CTR" >/dev/null

# --- the image ----------------------------------------------------------------------------
VERSION="$(sed -nE 's/^version *= *"([^"]+)".*/\1/p' pyproject.toml | head -1)"
SOURCE="$(git config --get remote.origin.url 2>/dev/null || echo "file://$ROOT")"
# pip in the build reaches PyPI through whatever this host trusts (a TLS-intercepting proxy's CA
# in CI): its CA bundle goes in as a build secret, in no layer of the image.
CA_BUNDLE="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
secret=()
[ -s "$CA_BUNDLE" ] && secret=(--secret "id=pip-cert,src=$CA_BUNDLE")
step "build $IMAGE (facegate $VERSION) on $BASE_IMAGE"
build=(buildah build --isolation chroot --format docker --layers --force-rm "${secret[@]}"
  --build-arg BASE="$BASE_IMAGE" --build-arg VERSION="$VERSION" --build-arg SOURCE="$SOURCE" -f Containerfile)
# The build stage is tagged too, so that pruning older builds (below) keeps its cached wheels.
"${build[@]}" --target build -t "$BUILD_IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
"${build[@]}" -t "$IMAGE" . >>"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
took
SIZE="$(buildah images --format '{{.Size}}' "$IMAGE" | head -1)"
echo "image: $IMAGE $SIZE"

# --- the image's metadata -----------------------------------------------------------------
HERE="$ROOT/.ci/container"  # the checks; copied into the image's working container as /smoke
mkdir -p "$WORK/smoke" "$WORK/data"
step "check the image: labels, user, volume, port, healthcheck"
buildah inspect --type image "$IMAGE" >"$WORK/inspect.json"
python3 "$HERE/inspect_image.py" "$WORK/inspect.json" "$VERSION" "$WORK/smoke/health.json"
took

# --- the image's contents -----------------------------------------------------------------
step "check the image's files: no compiler, pip cache, wheels, tests, bench or ../shared data"
buildah from -q --name "$SMOKE_CTR" "$IMAGE" >/dev/null
python3 "$HERE/image_files.py" "$(buildah mount "$SMOKE_CTR")" "$ROOT"
buildah umount "$SMOKE_CTR" >/dev/null
took

# --- use it: the CLI and the service, as the image's user, data on the /data volume ----------
step "smoke: the CLI and serve inside the image, as uid 10001, FACEGATE_DATA_DIR on the volume"
# /data is a host folder owned by the image's user, as a named volume or a bind mount would be.
chown 10001:10001 "$WORK/data" && chmod 0700 "$WORK/data"
cp "$HERE"/*.py "$HERE"/smoke.sh "$WORK/smoke/"
cp -r examples/gallery/Barack_Obama examples/probes/obama.jpg examples/probes/biden.jpg "$WORK/smoke/"
cp compose.yaml "$WORK/smoke/"
buildah copy -q --chown 10001:10001 "$SMOKE_CTR" "$WORK/smoke" /smoke >/dev/null
buildah run --isolation chroot --user 10001:10001 -v "$WORK/data:/data" "$SMOKE_CTR" -- sh /smoke/smoke.sh
took

step "smoke: the image's HEALTHCHECK against its ENTRYPOINT and CMD, as its default user"
# chroot isolation shares the host's network: the image's port 8080 must be free here.
if ! python3 "$HERE/reachable.py" 127.0.0.1:8080; then
  buildah run --isolation chroot -v "$WORK/data:/data" "$SMOKE_CTR" -- \
    /opt/facegate/bin/python /smoke/healthcheck.py /smoke/health.json
else
  echo "   port 8080 is in use on this host: skipped"
fi
took

step "smoke: serve on PostgreSQL and MQTT, configured as compose.yaml does (Home Assistant discovery)"
# The PostgreSQL and the broker .ci/run starts for the tests (a database and topics of its own,
# removed after); skipped where they are not running, except under CI=true.
PG_URL="${FACEGATE_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
MQTT_AT="${FACEGATE_TEST_MQTT:-127.0.0.1:1883}"
if python3 "$HERE/reachable.py" "$PG_URL" "$MQTT_AT"; then
  buildah run --isolation chroot --env FACEGATE_TEST_PG_URL="$PG_URL" --env FACEGATE_TEST_MQTT="$MQTT_AT" \
    "$SMOKE_CTR" -- /opt/facegate/bin/python /smoke/pg_mqtt.py
elif [ "${CI:-}" = true ]; then
  echo "PostgreSQL ($PG_URL) or the MQTT broker ($MQTT_AT) is not running (CI=true: required)"; exit 1
else
  echo "   PostgreSQL ($PG_URL) or the MQTT broker ($MQTT_AT) is not running: skipped"
fi
took

step "compose.yaml: its structure, and its facegate settings as the image reads them"
# No compose engine runs here (no daemon, no registry for postgres and mosquitto); `docker compose
# config` validates the file where the docker CLI has its compose plugin.
if docker compose version >/dev/null 2>&1; then
  FACEGATE_SECRET_KEY=compose-check-0123456789 POSTGRES_PASSWORD=compose-check docker compose -f compose.yaml config -q
  echo "   docker compose config: valid"
fi
# With the image's Python (PyYAML is one of facegate's dependencies).
buildah run --isolation chroot "$SMOKE_CTR" -- sh -c \
  'cd /smoke && python compose_check.py compose.yaml >/tmp/compose-env.json && python compose_settings.py /tmp/compose-env.json'
took

step "prune the layers of earlier builds (this build's cache stays)"
# Untagged, childless images of facegate's stages or of an older base: each changed source tree
# would otherwise leave about 1 GB behind. Images of anything else are left alone.
removed=0
for _ in $(seq 1 40); do
  ids="$( { for l in io.facegate.stage io.facegate.ci.base-key; do
      buildah images -a -q --no-trunc --filter dangling=true --filter "label=$l"; done; } | sort -u)"
  [ -n "$ids" ] || break
  # shellcheck disable=SC2086
  buildah rmi $ids >/dev/null
  removed=$((removed + $(wc -w <<<"$ids")))
done
echo "   $removed images removed; buildah storage: $(du -sh /var/lib/containers/storage 2>/dev/null | cut -f1)"
took
echo "container smoke test passed: $IMAGE ($SIZE)"
