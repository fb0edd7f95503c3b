// Package chaos owns the DoubleDutch fault-injection harness and the
// checker that judges what it records.
//
// A run starts three real `doubledutch` processes on loopback, each with
// its Raft transport bound to its own address 127.0.0.(11+i) and
// reachable by its peers only through a fault-injecting TCP proxy in this
// process. Because every node dials its peers from its own address, each
// proxy knows which node a connection comes from and can cut any directed
// link (partitions: an isolated leader, a minority, a bridge node). Process
// faults are kill -9 and restart from the same data directory, SIGSTOP and
// SIGCONT of the leader for longer than a lock lifetime, rolling restarts
// and leadership churn (SIGTERM of the leader, which hands leadership over
// before it exits). Disk faults wipe a follower's data directory while the
// other follower lags (then, sometimes, kill the leader), or remove raft.db
// or the snapshots of a stopped node. A client that holds a lock and then "pauses" past its
// lifetime is simulated in-process.
//
// Clients acquire, refresh, release and read a few contended names through
// the v1 API. Each logical call keeps one request id over all its attempts
// and is recorded once, from its first send to its definite answer; a call
// that never got one has an unknown outcome. Holders write their fencing
// token to a fenced resource that refuses tokens lower than the highest it
// has seen.
//
// Check then judges the history: linearizability against a one-lock-per-
// name model with nondeterministic expiry (porcupine), fencing order and
// the fenced resource, non-overlapping belief windows, no lost release or
// refresh and no early expiry. Run adds what only a live cluster can show:
// recovery time once faults stop, replica agreement, and expiry of a dead
// holder's lock across a leader crash. See README.md for how to run it.
//
// # The lock model
//
// One partition per name. The state is the holder's fencing token (or an
// anonymous holder: an acquire of unknown outcome that may have been
// granted), the earliest time the holder's lease can have run out
// (Expire), the highest fencing token granted, and Lo, the earliest time
// the last linearized operation can have taken effect. Operations carry
// their own call and return times. A grant whose request was sent at call
// with lifetime L sets Expire = call + L - tolerance: the leader stamps it
// no earlier than the request arrived, and a lease never ends before its
// lifetime has passed from its stamp. A refresh raises Expire to
// call + L - tolerance if that is later (the FSM never moves a deadline
// earlier). Expiry is not an
// operation: an operation that finds the lock free while the model holds
// it (a grant to someone else, a read of "free", a not_held answer to the
// holder) is allowed only if its return time is at or past Expire, and it
// then moves Lo up to Expire. Every operation moves Lo up to its call and
// is refused if Lo is past its return, so the chosen points in time stay
// monotonic. Expiry may be arbitrarily late (a failover only lengthens a
// lease), so a busy answer is always allowed while the model holds the
// lock. Operations of unknown outcome return at +infinity for the model
// and may or may not take effect (a nondeterministic step).
package chaos
