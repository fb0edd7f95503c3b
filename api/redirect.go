package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

// leaderRecheck is how often a request waiting for a leader looks again
// without an event: a follower's trust in a silent leader lapses, and
// comes back, with time alone (cluster.Node.Leader), which no event
// reports. Events wake waiters at once for everything else.
const leaderRecheck = 50 * time.Millisecond

// mustRedirect reports whether this node must send r to the leader.
func (s *Server) mustRedirect(r *http.Request, wh where) bool {
	switch wh {
	case anyNode:
		return false
	case staleOK:
		if isStale(r) {
			return false
		}
	}
	return !s.cluster.Leader().IsSelf
}

// reachLeader is the route wrapper's way to the leader. It waits, up to
// Config.LeaderWait, until some node leads and is ready: then, if that is
// this node, it returns r (with the time waited recorded in its context,
// so that a lock wait is charged for it) and true; else it answers 307 to
// the leader and returns false. Past the bound it answers 503 no_leader
// with Retry-After.
func (s *Server) reachLeader(w http.ResponseWriter, r *http.Request, sh shape) (*http.Request, bool) {
	li, waited, err := s.awaitLeader(r.Context(), s.cfg.LeaderWait)
	if err != nil {
		s.writeError(w, r, sh, err)
		return r, false
	}
	if li.IsSelf {
		if waited > 0 {
			r = r.WithContext(context.WithValue(r.Context(), leaderWaitKey{}, waited))
		}
		return r, true
	}
	s.redirect(w, r, sh, li, carry{spent: waited})
	return r, false
}

// awaitLeader returns the leader once one is usable: this node, ready to
// serve, or another node whose API URL is known. It wakes on leadership
// events (no busy loop) and gives up after bound with ErrNoLeader.
func (s *Server) awaitLeader(ctx context.Context, bound time.Duration) (cluster.LeaderInfo, time.Duration, error) {
	li := s.cluster.Leader()
	if s.usable(li) {
		return li, 0, nil
	}
	start := time.Now()
	s.leaderWaiters.Add(1)
	defer s.leaderWaiters.Add(-1)
	giveUp := time.NewTimer(bound)
	defer giveUp.Stop()
	recheck := time.NewTicker(leaderRecheck)
	defer recheck.Stop()
	for {
		changed := s.leaderChanged.wait()
		if li = s.cluster.Leader(); s.usable(li) {
			return li, time.Since(start), nil
		}
		select {
		case <-changed:
		case <-recheck.C:
		case <-giveUp.C:
			return li, time.Since(start), newError(ErrNoLeader, "no leader was ready within %v; retry shortly", bound)
		case <-ctx.Done():
			return li, time.Since(start), ErrClientGone
		}
	}
}

// usable reports whether li can serve a request now.
func (s *Server) usable(li cluster.LeaderInfo) bool {
	return li.IsSelf || (li.ID != "" && li.ID != s.selfID && li.APIURL != "")
}

// leaderWaitKey keys the time a request spent waiting for a leader.
type leaderWaitKey struct{}

// leaderWaited is the time the request behind ctx waited for a leader;
// a lock wait is shortened by it.
func leaderWaited(ctx context.Context) time.Duration {
	d, _ := ctx.Value(leaderWaitKey{}).(time.Duration)
	return d
}

// onLeaderEvent wakes the requests waiting for a leader on any change of
// leadership. It runs on the node's goroutines and does not block.
func (s *Server) onLeaderEvent(ev cluster.Event) {
	if ev.Kind == cluster.EventLeadership || ev.Kind == cluster.EventLeaderChanged {
		s.leaderChanged.fire()
	}
}

// leaderSignal tells requests waiting for a leader that the leader may
// have changed: wait returns a channel that the next fire closes.
type leaderSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (l *leaderSignal) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	return l.ch
}

func (l *leaderSignal) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
}

// redirectBody is the body of a 307, for people reading it with curl.
type redirectBody struct {
	LeaderID string `json:"leader_id"`
	Location string `json:"location"`
}

// carry is what a redirect takes along beyond method, path, query and
// body: the request id under which a proposal may already have been
// made, so the new leader deduplicates it, and how much of the lock
// wait is used up (spent) or left (remaining, when known exactly).
type carry struct {
	requestID string
	spent     time.Duration
	remaining *time.Duration
}

// redirect is the one place a request leaves for the leader: 307 keeps
// the method and body (DELETE stays DELETE), never 301, which clients
// cache. A redirect back to this node (it leads again) is relative.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, sh shape, li cluster.LeaderInfo, c carry) {
	base := ""
	if !li.IsSelf {
		base = strings.TrimRight(li.APIURL, "/")
	}
	target := base + r.URL.EscapedPath()
	if q := carryQuery(r.URL.RawQuery, sh, c); q != "" {
		target += "?" + q
	}
	w.Header().Set("Location", target)
	writeJSON(w, http.StatusTemporaryRedirect, redirectBody{LeaderID: li.ID, Location: target})
}

// carryQuery rewrites the query for a redirect: request_id is set to the
// carried id, and the lock wait (timeout= on /getlock, wait= on v1) is
// set to what is left of it. Other parameters keep their exact bytes.
func carryQuery(raw string, sh shape, c carry) string {
	waitKey := "wait"
	if sh == shapeGetLock {
		waitKey = "timeout"
	}
	remaining := c.remaining
	if remaining == nil && c.spent > 0 {
		if v, ok := rawQueryValue(raw, waitKey); ok {
			if sec, err := strconv.ParseFloat(v, 64); err == nil && sec > 0 {
				left := max(time.Duration(sec*float64(time.Second))-c.spent, 0)
				remaining = &left
			}
		}
	}
	var keep []string
	for _, part := range strings.Split(raw, "&") {
		key, _, _ := strings.Cut(part, "=")
		if part == "" || (remaining != nil && key == waitKey) || (c.requestID != "" && key == "request_id") {
			continue
		}
		keep = append(keep, part)
	}
	if c.requestID != "" {
		keep = append(keep, "request_id="+url.QueryEscape(c.requestID))
	}
	if remaining != nil {
		keep = append(keep, waitKey+"="+strconv.FormatFloat(remaining.Seconds(), 'f', 3, 64))
	}
	return strings.Join(keep, "&")
}

// retryCarrier is an error from the waiting or proposing path that gave
// up because leadership was lost, and says how to retry safely at the
// next leader: under which request id, with how much lock wait left.
type retryCarrier interface {
	RetryRequestID() string
	RemainingWait() time.Duration
}

// carryAcross answers a handler's error with a 307 to the next leader
// when the request can be retried there without acting twice, and
// reports whether it did. That is the case for
//   - nothing proposed (not leader, or a waiter whose leader stepped
//     down, with nothing in flight), and
//   - a proposal not applied, or of unknown outcome, because leadership
//     was lost, when the error carries the request id that makes the
//     retry deduplicated (retryCarrier).
//
// It waits for the next leader within Config.LeaderWait; past that, and
// for every other error, the caller answers the error itself (503/504).
func (s *Server) carryAcross(w http.ResponseWriter, r *http.Request, sh shape, err error) bool {
	var c carry
	var rc retryCarrier
	switch {
	case errors.As(err, &rc) && isCarriable(err) && s.leadershipMoved(err):
		left := rc.RemainingWait()
		c = carry{requestID: rc.RetryRequestID(), remaining: &left}
	case isNotLeader(err), errors.Is(err, ErrLeaderChanged):
		c = carry{spent: time.Since(requestStart(r))}
	case errors.Is(err, cluster.ErrNotApplied) && !errors.Is(err, cluster.ErrUnknownOutcome):
		// Not applied, safe to retry anywhere; worth it only if the
		// leadership moved. At a node that still leads the waiting layer
		// already retried until its ProposeTimeout ended (a sustained
		// overload): answered 503 with Retry-After.
		if s.cluster.Leader().IsSelf {
			return false
		}
		c = carry{spent: time.Since(requestStart(r))}
	default:
		return false
	}
	li, _, werr := s.awaitLeader(r.Context(), s.cfg.LeaderWait)
	if werr != nil {
		return false
	}
	s.redirect(w, r, sh, li, c)
	return true
}

// leadershipMoved reports whether err came from losing leadership (or
// this node no longer leads), as opposed to a leader that still leads and
// could not finish in time: that is answered 503/504 to the client, who
// retries with the same request id.
func (s *Server) leadershipMoved(err error) bool {
	return errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrLeadershipLost) ||
		errors.Is(err, ErrLeaderChanged) || !s.cluster.Leader().IsSelf
}

// isCarriable: the outcomes a retry under the same request id resolves.
func isCarriable(err error) bool {
	return errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrNotApplied) ||
		errors.Is(err, cluster.ErrUnknownOutcome) || errors.Is(err, ErrLeaderChanged)
}

// isNotLeader reports a request that may go to the leader instead: nothing
// was proposed. An error that also says the outcome is unknown is not one
// (a retry elsewhere might act twice), so it is answered as unknown.
func isNotLeader(err error) bool {
	return errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrUnknownOutcome)
}

// startKey keys the time the route wrapper received the request.
type startKey struct{}

// requestStart is when the route wrapper received r (now if unknown).
func requestStart(r *http.Request) time.Time {
	if t, ok := r.Context().Value(startKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}
