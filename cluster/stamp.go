package cluster

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"
)

// Old-term stamps. A proposal reads the leader's lease clock (its stamp)
// and then hands the command to Raft. If the proposing goroutine is
// descheduled in between while this node loses leadership and wins it
// again, the command would enter the log in the new term carrying a stamp
// of the old one. A stamp that is behind the cluster clock is harmless:
// the state machine never moves its clock back, and a deadline measured
// from a stamp taken after the request arrived still covers the client's
// own reckoning (cluster time never runs faster than real time). But a
// stamp can also be *ahead*: readings the old term handed out but never
// committed are not part of the clock the new term starts from (its base
// is the applied clock after its Barrier), and applying one would move
// the cluster clock forward and expire locks early.
//
// So every command carries, in the log entry's Extensions, the term its
// stamp was taken in, and a replica applies a command only when that term
// equals the entry's own term (raft.Log.Term, set by the leader loop that
// accepted the entry). Entries keep their term when a later leader
// commits them, so a command proposed and accepted in one term is
// applied however late it commits; only the cross-term handoff is
// refused, on every replica alike, and its proposer is told "not
// applied" (safe to retry). Entries without the extension (older logs)
// are applied as before.

// errStaleStamp answers a command refused for an old-term stamp.
var errStaleStamp = fmt.Errorf("%w: stamped in an earlier term of this leader", ErrNotApplied)

// stampTerm encodes the term a stamp was taken in, for Log.Extensions.
func stampTerm(term uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, term)
}

// staleStamp reports whether l carries a stamp term other than its own.
func staleStamp(l *raft.Log) bool {
	return len(l.Extensions) == 8 && binary.BigEndian.Uint64(l.Extensions) != l.Term
}
