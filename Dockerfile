# DoubleDutch node image: a static binary on an empty base.
#
# Nothing is pulled: the image starts FROM scratch, so it builds on a Docker
# engine that cannot reach any registry. Build the binary first, then the
# image; scripts/build-image.sh does both:
#
#   scripts/build-image.sh                 # -> doubledutch:dev
#
# or by hand, from the repository root:
#
#   mkdir -p dist/rootfs/data
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o dist/doubledutch ./cmd/doubledutch
#   docker build -t doubledutch:dev .
#
# Where a registry is available, deploy/docker/Dockerfile.golang compiles
# inside a golang image instead (see deploy/README.md).
#
# Configuration comes from flags and DOUBLEDUTCH_* environment variables
# (every flag of `doubledutch serve`, e.g. --raft-bind is
# DOUBLEDUTCH_RAFT_BIND). The original single-node command line still works:
#   docker run -p 8000:8000 -v "$PWD/certificate.crt:/certificate.crt" \
#     -v "$PWD/privateKey.key:/privateKey.key" -v "$PWD/config.txt:/config.txt" \
#     doubledutch:dev 8000
# The process runs as uid/gid 65532: mounted key files must be readable by
# it (see deploy/README.md, "Secrets and file ownership").
FROM scratch

# DIST is the folder (relative to the build context) holding the binary and
# the rootfs skeleton; scripts/build-image.sh -o changes it.
ARG DIST=dist
ARG VERSION=dev

LABEL org.opencontainers.image.title="doubledutch" \
      org.opencontainers.image.description="DoubleDutch cluster: a fault-tolerant distributed lock service (Raft)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/doubledutch/doubledutch"

# rootfs holds only an empty data/ folder: COPY --chown makes /data owned by
# the runtime user, so a fresh named volume mounted there inherits that
# owner (the legacy builder has no RUN in a scratch image).
COPY --chown=65532:65532 ${DIST}/rootfs/ /
COPY ${DIST}/doubledutch /doubledutch

# Raft state lives here; mount a volume on it.
ENV DOUBLEDUTCH_DATA_DIR=/data
VOLUME ["/data"]

# Client API (HTTPS by default; the compose cluster uses 8001-8003) and Raft.
EXPOSE 8000 7000

USER 65532:65532
WORKDIR /data

# `doubledutch health --endpoint /readyz` GETs $DOUBLEDUTCH_API_URL/readyz and
# verifies the certificate against $DOUBLEDUTCH_HEALTH_CA: healthy while the
# node knows a leader, has heard from it lately, has applied what it knows
# committed and is not shutting down. No curl needed.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/doubledutch", "health", "--endpoint", "/readyz"]

# SIGTERM makes a leader hand leadership over before it exits; give it time
# (docker stop -t, compose stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/doubledutch"]
CMD ["serve"]
