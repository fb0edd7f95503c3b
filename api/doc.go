// Package api is the HTTP(S) face of a DoubleDutch cluster node: the
// router, the original DoubleDutch endpoints, the v1 JSON API, API-key
// checks, request validation, the one error table and the leader
// redirect. Waiting for locks lives in cluster/locking: the lock handlers
// decode a request, call it and encode the answer.
//
// # What api owns and what it must not do
//
// api turns requests into calls on the Cluster interface it declares
// itself (cluster.go) and results into JSON. It must not touch raft: it
// never proposes a log entry but through Cluster, never reads a wall clock
// into lock state (lease times are cluster milliseconds that the Cluster
// reports), and never logs an API key or a session token. It keeps no
// global state: everything lives in a Server, built by New.
//
// # Endpoints
//
// The original DoubleDutch API, unchanged for its clients:
//
//	GET    /getlock?auth=KEY&lockname=NAME[&timeout=S][&lifetime=S]
//	DELETE /releaselock?lockname=NAME&token=TOKEN[&auth=KEY]
//	GET    /status?auth=KEY
//
// The v1 API (Authorization: Bearer KEY):
//
//	POST   /v1/locks/{name}          acquire {lifetime, wait, owner, request_id}
//	DELETE /v1/locks/{name}          release {token, request_id}
//	POST   /v1/locks/{name}/refresh  refresh {token, lifetime, request_id}
//	GET    /v1/locks/{name}          read one lock [?stale=true]
//	GET    /v1/locks                 list [?prefix=&after=&limit=&stale=true]
//	GET    /v1/cluster               this node's view of the cluster
//	GET    /v1/health                no key; 200 when a leader is known
//
// Operations (ops.go, metrics.go, ui.go):
//
//	GET    /healthz                  no key; liveness
//	GET    /readyz                   no key; readiness (leader, contact, caught up)
//	GET    /metrics                  no key; Prometheus, no lock names or tokens
//	GET    /ui/                      the status page (embedded HTML/CSS/JS)
//
// Admin, with the admin key (Config.AdminKey; 403 admin_disabled without
// one), never the lock key: a backup holds every session token.
//
//	PUT    /v1/cluster/nodes/{id}    add a voter {raft_address} [?force=true]
//	DELETE /v1/cluster/nodes/{id}    remove a member [?force=true]
//	POST   /v1/cluster/leader        transfer leadership {target} (ops.go)
//	GET    /v1/snapshot              a consistent, self-checking backup (ops.go)
//
// A lock name is one path segment: percent-encode "/" as %2F. openapi.yaml
// beside this file describes every field; the README has the tables.
//
// # Bounds
//
// HTTPServer and Listener carry the connection-level bounds (header time,
// idle time, a connection cap that sheds idle connections when reached).
// A request body is read whole, by the v1 routes that take one and once
// the key is checked, within BodyTimeout (body.go); an answer given without reading it ends it, and
// every answer has WriteTimeout from its first byte (middleware.go). None
// of these bounds the time a request waits for a lock. /status streams
// page by page (status.go).
//
// # Errors
//
// Every error is {"error":{"code":"...","message":"..."}} with a stable
// code; errorTable in errors.go is the one place an error becomes a
// status and a code. The original endpoints add their own fields to it
// (servername, and lockacquired or lockreleased false), and a failed
// /releaselock is a 400 as in the original. An outcome the cluster cannot
// know (the proposal may still commit) is 504 unknown_outcome, never a
// success or a plain failure; retry it with the same request id. A 5xx
// body carries the table's short message; causes go to the log.
//
// # Leader redirect
//
// Only the leader serves lock requests. A follower answers 307 Temporary
// Redirect to the same path and query on the leader's advertised API URL
// (the method and body are kept); with no leader known it answers 503
// with Retry-After. /v1/health, /v1/cluster and reads with ?stale=true are
// answered by every node itself.
//
// # Waiting
//
// A request that may wait (timeout= or "wait") is served by
// cluster/locking: a FIFO queue per name at the leader, the freed lock
// handed to the head waiter in the same commit that frees it, a waiter
// whose client left never granted. On leadership loss a waiter ends with
// leader_changed, an error that also matches cluster.ErrNotLeader and
// carries its request id and remaining wait for the redirect.
package api
