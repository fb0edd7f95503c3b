package ddtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// GrantElsewhere is another client competing for name: it polls for the
// lock at the leader's own listener (past the proxies, which a test may
// be cutting), one attempt every few milliseconds, and returns the send
// time of the attempt that was granted: a lower bound of the moment the
// cluster gave the lock to someone else. It fails t if no attempt is
// granted within timeout.
func (c *Cluster) GrantElsewhere(t testing.TB, name string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		i := c.LeaderNow()
		if i < 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		cl, err := client.NewClient(client.Config{Endpoints: []string{c.Nodes[i].Direct}, APIKey: Key, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		for time.Now().Before(deadline) {
			sent := time.Now()
			l, err := cl.Acquire(context.Background(), name, client.AcquireOptions{Lifetime: time.Minute})
			if err == nil {
				t.Logf("another client was granted %s (fence %d)", name, l.Fence())
				return sent
			}
			if !errors.Is(err, client.ErrBusy) {
				break // leadership moved: find the leader again
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatalf("no other client was granted %s within %v", name, timeout)
	return time.Time{}
}
