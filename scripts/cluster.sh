#!/usr/bin/env bash
# A three-node DoubleDutch cluster in Docker, with one command.
#
#   scripts/cluster.sh up [--no-build]   build the binary and image, create the
#                                        certificates and API key if missing,
#                                        start the cluster, wait for a leader
#   scripts/cluster.sh down [--wipe]     stop it; --wipe also deletes the data
#                                        volumes (the next up starts afresh)
#   scripts/cluster.sh status            each node with its container, health
#                                        and the leader's container
#   scripts/cluster.sh logs [SERVICE]    follow the logs (dd1, dd2, dd3)
#   scripts/cluster.sh certs             only create the certificates, API key
#                                        and compose.env
#
# Settings (environment):
#   COMPOSE_PROJECT_NAME  compose project, names containers and volumes (doubledutch)
#   DD_CERTS_DIR          secret files, git-ignored (./certs)
#   DD_IMAGE              image tag (doubledutch:dev)
#   DD_PORT1..DD_PORT3    host API ports (8001..8003)
#   WAIT_SECONDS          how long up waits for a leader (90)
# See docker-compose.cluster.yml for the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export PATH="$PATH:/usr/local/go/bin"

certs="${DD_CERTS_DIR:-./certs}"
case "$certs" in /*) ;; *) certs="$root/${certs#./}" ;; esac
# The settings of the last `up` (certs/compose.env) are the defaults of
# later commands; the environment still wins.
if [ -f "$certs/compose.env" ]; then
  while IFS='=' read -r key value; do
    case "$key" in
      COMPOSE_PROJECT_NAME|DD_IMAGE|DD_PORT1|DD_PORT2|DD_PORT3)
        [ -n "${!key:-}" ] || declare "$key=$value" ;;
    esac
  done <"$certs/compose.env"
fi
project="${COMPOSE_PROJECT_NAME:-doubledutch}"
image="${DD_IMAGE:-doubledutch:dev}"
ports=("${DD_PORT1:-8001}" "${DD_PORT2:-8002}" "${DD_PORT3:-8003}")
nodes=(node1 node2 node3)
bin="$root/dist/doubledutch"
compose_file="$root/docker-compose.cluster.yml"
env_file="$certs/compose.env"
# The uid/gid the image runs as (Dockerfile USER).
container_uid=65532

die() { echo "cluster.sh: $*" >&2; exit 1; }

compose() {
  local opts=(-p "$project" -f "$compose_file")
  # The secret paths and group come from compose.env, when there is one.
  if [ -f "$env_file" ]; then opts=(--env-file "$env_file" "${opts[@]}"); fi
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose "${opts[@]}" "$@"
  elif docker compose version >/dev/null 2>&1; then
    docker compose "${opts[@]}" "$@"
  else
    die "neither docker-compose nor 'docker compose' is installed"
  fi
}

build() {
  scripts/build-image.sh -t "$image"
}

ensure_binary() {
  if [ ! -x "$bin" ]; then
    echo "==> building $bin"
    mkdir -p dist
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin" ./cmd/doubledutch
  fi
}

# make_secrets creates what docker-compose.cluster.yml's secrets point at,
# keeping whatever already exists, and makes the key files readable by the
# container's user.
make_secrets() {
  ensure_binary
  mkdir -p "$certs"
  chmod 0700 "$certs"
  local missing=0 n
  for n in ca "${nodes[@]}"; do
    [ -f "$certs/$n.crt" ] || missing=1
  done
  if [ "$missing" = 1 ]; then
    if [ -f "$certs/ca.crt" ] && [ -f "$certs/ca.key" ]; then
      echo "==> signing missing node certificates with the existing CA in $certs"
      local todo=()
      for n in "${nodes[@]}"; do [ -f "$certs/$n.crt" ] || todo+=("$n"); done
      "$bin" certs --out "$certs" --reuse-ca --nodes "$(IFS=,; echo "${todo[*]}")"
    else
      echo "==> creating a CA and certificates for ${nodes[*]} in $certs"
      "$bin" certs --out "$certs" --nodes "$(IFS=,; echo "${nodes[*]}")"
    fi
  fi
  if [ ! -s "$certs/api-key.txt" ]; then
    echo "==> creating an API key in $certs/api-key.txt"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 40 >"$certs/api-key.txt"; echo >>"$certs/api-key.txt")
  fi
  if [ ! -s "$certs/admin-key.txt" ]; then
    echo "==> creating an admin key (membership, transfer-leader, backup) in $certs/admin-key.txt"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 40 >"$certs/admin-key.txt"; echo >>"$certs/admin-key.txt")
  fi

  # Compose file secrets are bind mounts: the container sees the host file's
  # owner and mode. The node runs as uid/gid 65532, so:
  #  - as root, hand the private files to 65532 (mode 0600);
  #  - otherwise (no chown allowed), make them group-readable (0640) by your
  #    own primary group and add that group to the container's process
  #    (DD_SECRETS_GID, group_add in the compose file).
  # The folder itself stays 0700: other users of this host can't read them.
  local gid private=("$certs/api-key.txt" "$certs/admin-key.txt")
  for n in "${nodes[@]}"; do private+=("$certs/$n.key"); done
  if [ "$(id -u)" = 0 ]; then
    chown "$container_uid:$container_uid" "${private[@]}"
    chmod 0600 "${private[@]}"
    gid="$container_uid"
  else
    gid="$(id -g)"
    chmod 0640 "${private[@]}"
  fi
  chmod 0644 "$certs/ca.crt"
  for n in "${nodes[@]}"; do chmod 0644 "$certs/$n.crt"; done

  cat >"$env_file" <<EOF
# Written by scripts/cluster.sh: settings for
#   docker-compose --env-file $env_file -f docker-compose.cluster.yml ...
COMPOSE_PROJECT_NAME=$project
DD_CERTS_DIR=$certs
DD_IMAGE=$image
DD_SECRETS_GID=$gid
DD_PORT1=${ports[0]}
DD_PORT2=${ports[1]}
DD_PORT3=${ports[2]}
EOF
}

# container prints the name of the container that runs node i (0-based):
# service ddN runs nodeN. The name depends on the compose version
# (project_dd1_1 or project-dd1-1), so ask compose for it.
container() {
  local id
  id="$(compose ps -q "dd$(($1 + 1))" 2>/dev/null | head -1)"
  if [ -n "$id" ]; then
    docker inspect -f '{{.Name}}' "$id" 2>/dev/null | sed 's|^/||'
  else
    echo "(no container)"
  fi
}

# health prints one line for node i (0-based) and succeeds when it is
# healthy (serves and knows a leader).
health() {
  local i="$1"
  "$bin" health --url "https://127.0.0.1:${ports[$i]}" --ca "$certs/ca.crt" --timeout 2s 2>&1 | head -1
  return "${PIPESTATUS[0]}"
}

wait_for_leader() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-90})) i ok out
  echo "==> waiting for a leader (up to ${WAIT_SECONDS:-90}s)"
  while :; do
    ok=0
    for i in 0 1 2; do
      if out="$(health "$i")"; then ok=$((ok + 1)); fi
    done
    if [ "$ok" = 3 ]; then
      echo "    every node knows the leader: ${out#* }"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: no leader after ${WAIT_SECONDS:-90}s; last answer: $out" >&2
      compose ps >&2 || true
      compose logs --tail 30 >&2 || true
      return 1
    fi
    sleep 1
  done
}

print_usage_info() {
  local host="localhost"
  cat <<EOF

DoubleDutch cluster "$project" is up:
  node1  https://$host:${ports[0]}  container $(container 0)
  node2  https://$host:${ports[1]}  container $(container 1)
  node3  https://$host:${ports[2]}  container $(container 2)
  CA certificate  $certs/ca.crt
  API key         $certs/api-key.txt   (first line)

Try it (followers redirect to the leader; -L follows):
  KEY=\$(head -1 $certs/api-key.txt)
  curl -sL --cacert $certs/ca.crt "https://$host:${ports[0]}/getlock?auth=\$KEY&lockname=demo&lifetime=60"
  curl -sL --cacert $certs/ca.crt "https://$host:${ports[1]}/status?auth=\$KEY"
  # v1 API: curl drops the Authorization header when a redirect changes the
  # port, so let it resend the key to the leader with --location-trusted:
  curl -s --location-trusted --cacert $certs/ca.crt -H "Authorization: Bearer \$KEY" \\
       -X POST -d '{"lifetime":60}' https://$host:${ports[2]}/v1/locks/demo2
  curl -s --cacert $certs/ca.crt -H "Authorization: Bearer \$KEY" https://$host:${ports[0]}/v1/cluster

Which node leads, and in which container: scripts/cluster.sh status
Stop: scripts/cluster.sh down   (keeps the data; --wipe deletes it)
EOF
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up)
    nobuild=0
    for a in "$@"; do
      case "$a" in
        --no-build) nobuild=1 ;;
        *) die "up: unknown argument $a" ;;
      esac
    done
    if [ "$nobuild" = 0 ] || ! docker image inspect "$image" >/dev/null 2>&1; then
      build
    fi
    make_secrets
    echo "==> docker-compose up (project $project)"
    compose up -d
    wait_for_leader
    print_usage_info
    ;;
  down)
    wipe=()
    for a in "$@"; do
      case "$a" in
        --wipe|-v) wipe=(-v) ;;
        *) die "down: unknown argument $a" ;;
      esac
    done
    compose down "${wipe[@]}"
    if [ "${#wipe[@]}" -gt 0 ]; then
      echo "==> removed the containers, the network and the data volumes (every lock is gone)."
    else
      echo "==> removed the containers and the network; the data volumes are kept (add --wipe to delete them)."
    fi
    echo "    Kept: $certs (CA, node certificates and keys, API key; 'rm -rf $certs' to delete)"
    echo "    and the image $image ('docker image rm $image' to delete)."
    ;;
  status)
    [ -f "$env_file" ] || die "no $env_file: the cluster was never started (scripts/cluster.sh up)"
    compose ps
    ensure_binary
    echo
    leader=""
    for i in 0 1 2; do
      name="$(container "$i")"
      out="$(health "$i" || true)"
      printf '%s  %-24s  https://localhost:%s  %s\n' "${nodes[$i]}" "$name" "${ports[$i]}" "$out"
      case "$out" in
        *'"leader_id":"'*) leader="$(printf '%s' "$out" | sed 's/.*"leader_id":"\([^"]*\)".*/\1/')" ;;
      esac
    done
    for i in 0 1 2; do
      if [ "${nodes[$i]}" = "$leader" ]; then
        echo "leader: $leader, container $(container "$i") (e.g. docker kill $(container "$i"))"
      fi
    done
    [ -n "$leader" ] || echo "leader: none known"
    ;;
  logs)
    compose logs -f --tail 100 "$@"
    ;;
  certs)
    make_secrets
    echo "==> secrets ready in $certs (compose settings in $env_file)"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 2
    ;;
esac
