package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// legacyTimeout bounds one raw-HTTP call. Python's requests has no
// timeout by default; 10 s is past the longest fault, so a call that hangs
// on a stopped node is answered after it resumes.
const legacyTimeout = 10 * time.Second

// LegacyCall is one call of a client that does not retry: raw HTTP on the
// original API, following redirects as Python's requests does (307 keeps
// the method), with nothing of its own between an answer and the caller.
type LegacyCall struct {
	Start, End int64
	Release    bool // DELETE /releaselock; else GET /getlock
	Definite   bool // an answer that says what happened (2xx, 4xx)
	OK         bool // lock acquired / released
	Status     int  // 0: no HTTP answer
	Err        string
}

// legacyClients runs n raw-HTTP clients of the original API on names of
// their own ("legacy-N"), outside the checked history: they measure what
// a client without retries sees. A client picks a node at random for
// each call; a connection that is refused (nothing sent) moves to the
// next node, as a client with a list of servers does.
type legacyClients struct {
	urls    []string
	rec     *Recorder
	timeout time.Duration
	mu      sync.Mutex
	calls   []LegacyCall
}

func (l *legacyClients) run(ctx context.Context, n int, seed int64) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l.loop(ctx, i, rand.New(rand.NewSource(seed*7919+int64(i))))
		}(i)
	}
	wg.Wait()
}

func (l *legacyClients) loop(ctx context.Context, i int, rng *rand.Rand) {
	hc := &http.Client{Timeout: l.timeout}
	name := fmt.Sprintf("legacy-%d", i)
	for ctx.Err() == nil {
		q := url.Values{"lockname": {name}, "auth": {apiKey}, "lifetime": {"2"}, "timeout": {"0"}}
		var got struct {
			Acquired bool   `json:"lockacquired"`
			Token    string `json:"sessiontoken"`
		}
		c := l.call(hc, rng, http.MethodGet, "/getlock?"+q.Encode(), &got)
		c.OK = c.Status == http.StatusOK && got.Acquired
		l.add(c)
		if c.OK {
			rq := url.Values{"lockname": {name}, "auth": {apiKey}, "token": {got.Token}}
			var rel struct {
				Released bool `json:"lockreleased"`
			}
			rc := l.call(hc, rng, http.MethodDelete, "/releaselock?"+rq.Encode(), &rel)
			rc.Release, rc.OK = true, rc.Status == http.StatusOK && rel.Released
			l.add(rc)
		}
		time.Sleep(time.Duration(20+rng.Intn(60)) * time.Millisecond)
	}
}

// call sends one request, moving on to the next node only when the
// connection was refused, and decodes a 200 answer into out.
func (l *legacyClients) call(hc *http.Client, rng *rand.Rand, method, target string, out any) LegacyCall {
	c := LegacyCall{Start: l.rec.Now()}
	first := rng.Intn(len(l.urls))
	for k := 0; k < len(l.urls); k++ {
		req, _ := http.NewRequest(method, l.urls[(first+k)%len(l.urls)]+target, nil)
		resp, err := hc.Do(req)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			continue
		}
		if err != nil {
			c.Err = errClass(err)
		}
		if err == nil {
			c.Status = resp.StatusCode
			c.Definite = resp.StatusCode < 500
			if resp.StatusCode == http.StatusOK {
				_ = json.NewDecoder(resp.Body).Decode(out)
			}
			resp.Body.Close()
		}
		break
	}
	c.End = l.rec.Now()
	return c
}

func (l *legacyClients) add(c LegacyCall) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

func (l *legacyClients) history() []LegacyCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LegacyCall(nil), l.calls...)
}

// errClass names a transport error briefly, for the report.
func errClass(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &op):
		return op.Op + " " + op.Err.Error()
	}
	return "other"
}
