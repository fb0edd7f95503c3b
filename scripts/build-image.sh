#!/usr/bin/env bash
# Builds the static doubledutch binary and the FROM-scratch container image.
#
#   scripts/build-image.sh [-t TAG] [-o DIR] [--no-binary]
#
#   -t TAG       image tag (default: $DD_IMAGE or doubledutch:dev)
#   -o DIR       folder for the binary and the image's rootfs skeleton,
#                relative to the repository root (default: dist)
#   --no-binary  reuse DIR/doubledutch instead of compiling it
#
# Nothing is pulled: the Dockerfile starts FROM scratch, so this works on an
# engine without registry access. It prints the image tag and size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

tag="${DD_IMAGE:-doubledutch:dev}"
dist="dist"
build_binary=1
while [ $# -gt 0 ]; do
  case "$1" in
    -t|--tag) tag="$2"; shift 2 ;;
    -o|--out) dist="$2"; shift 2 ;;
    --no-binary) build_binary=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$dist" in
  /*|..|../*|*/../*|*/..) echo "build-image.sh: -o must be a folder inside the repository" >&2; exit 2 ;;
esac

version="$(git describe --always --dirty 2>/dev/null || echo dev)"

if [ "$build_binary" = 1 ]; then
  echo "==> go build ./cmd/doubledutch -> $dist/doubledutch (static, CGO_ENABLED=0)"
  mkdir -p "$dist"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dist/doubledutch" ./cmd/doubledutch
fi
if [ ! -x "$dist/doubledutch" ]; then
  echo "build-image.sh: $dist/doubledutch is missing; run without --no-binary" >&2
  exit 1
fi
# A FROM-scratch image has no libc: refuse a dynamically linked binary.
if command -v readelf >/dev/null 2>&1 && readelf -l "$dist/doubledutch" 2>/dev/null | grep -q 'INTERP'; then
  echo "build-image.sh: $dist/doubledutch is dynamically linked; build it with CGO_ENABLED=0" >&2
  exit 1
fi

# The image's /data comes from this empty folder (COPY --chown, no RUN in
# scratch). Keep it empty: whatever is in it lands in every new volume.
rm -rf "$dist/rootfs"
mkdir -p "$dist/rootfs/data"

echo "==> docker build -t $tag (FROM scratch, no pulls)"
# Without the buildx plugin the docker CLI falls back to the legacy builder
# (and says it is deprecated); the Dockerfile works with both builders.
docker build --quiet \
  --build-arg "DIST=$dist" --build-arg "VERSION=$version" \
  -t "$tag" -f Dockerfile . >/dev/null

size="$(docker image inspect -f '{{.Size}}' "$tag")"
echo "==> built $tag ($(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }'), $size bytes)"
