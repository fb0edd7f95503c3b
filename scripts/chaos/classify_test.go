package chaos

import (
	"fmt"
	"net"
	"testing"

	"github.com/doubledutch/doubledutch/api/codes"
	"github.com/doubledutch/doubledutch/client"
)

// TestClassifyFollowsTheClient: the harness takes its verdicts from the
// client's errors, so a code the client knows as passing (the 429s,
// too_stale) is a failed attempt, not an unknown outcome, and the codes
// that say "applied, maybe" stay unknown.
func TestClassifyFollowsTheClient(t *testing.T) {
	api := func(c codes.Code) error { return &client.APIError{Status: 400, Code: c} }
	for _, tc := range []struct {
		err  error
		out  Outcome
		verd verdict
	}{
		{nil, OK, definite},
		{api(codes.Busy), Busy, definite},
		{api(codes.NotHeld), NotHeld, definite},
		{api(codes.NotFound), NotFound, definite},
		{api(codes.NoLeader), Failed, notApplied},
		{api(codes.TooStale), Failed, notApplied},
		{api(codes.TooManyLocks), Failed, notApplied},
		{api(codes.TooManyRequestIDs), Failed, notApplied},
		{api(codes.TooManyWaiters), Failed, notApplied},
		{&client.APIError{Status: 307, Code: "http_307"}, Failed, notApplied},
		{&net.OpError{Op: "dial", Err: fmt.Errorf("refused")}, Failed, notApplied},
		{api(codes.UnknownOutcome), Unknown, maybeApplied},
		{api(codes.Internal), Unknown, maybeApplied},
		{api(codes.GrantEnded), Unknown, maybeApplied},
		{&client.UnknownOutcomeError{RequestID: "r"}, Unknown, maybeApplied},
		{&net.OpError{Op: "read", Err: fmt.Errorf("reset")}, Unknown, maybeApplied},
	} {
		out, v := classify(tc.err)
		if out != tc.out || v != tc.verd {
			t.Errorf("%v: %s %s, want %s %s", tc.err, out, v, tc.out, tc.verd)
		}
	}
}
