// Package composetest runs the three-node cluster of
// docker-compose.cluster.yml in real containers and breaks it: it builds
// the FROM-scratch image (scripts/build-image.sh), creates certificates
// with `doubledutch certs`, starts the cluster under a unique compose
// project on free host ports, and checks from the host, over HTTPS
// verified against the generated CA, that
//
//  1. a lock acquired through node 1 reads the same through nodes 2 and 3
//     (followers redirect to the leader);
//  2. killing the leader (docker kill) elects a new one within seconds,
//     keeps every lock and fencing token, grants larger fencing tokens
//     afterwards, and the killed node rejoins and catches up after
//     docker start (repeated, to measure kill-to-first-acquire time);
//  3. a leader cut off the Raft network (docker network disconnect)
//     grants nothing, the majority elects a leader and serves, and after
//     reconnecting all three converge on one state;
//  4. restarting all three (docker-compose restart, and down/up keeping
//     the volumes) loses no lock and no fencing token;
//  5. with two nodes stopped the last one grants nothing and answers 503.
//
// The tests need a Docker engine and docker-compose (or `docker compose`).
// They skip, saying so, when `docker info` fails, when -short is given,
// or when DOUBLEDUTCH_SKIP_DOCKER_TESTS=1. Every container, network,
// volume and image they create is removed when they end, failed or not.
// They talk only to 127.0.0.1 and to the containers they start.
//
// There is no non-test code here: the package exists for its tests.
package composetest
