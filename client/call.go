package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/doubledutch/doubledutch/api/codes"
)

// request is one logical call. Every attempt of it carries the same
// request id, so repeating one whose outcome is unknown cannot act twice.
type request struct {
	method, path string
	// body builds the JSON body for an attempt, given the wait that is
	// left (an acquire asks the server to wait only for what remains).
	// nil: no body.
	body      func(wait time.Duration) any
	out       any
	wait      time.Duration // how long the server may hold the request
	mutating  bool
	requestID string
	// attemptTimeout overrides the client's (a keepalive refresh must
	// fit several attempts into a third of the lifetime).
	attemptTimeout time.Duration
}

// verdict is what a failed attempt says about the command's effect.
type verdict int

const (
	definite   verdict = iota // an answer: stop and report it
	notApplied                // certainly no effect: retry anywhere
	maybe                     // may have been applied: retry with the same id
)

// Backoff between attempts: full jitter within [d/2, d), d doubling from
// backoffBase to backoffMax, so that clients retrying through an election
// neither wait long nor hit the new leader in step.
const (
	backoffBase = 20 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
)

// call runs r's attempts until a definite answer, the retry budget
// (RetryFor plus r.wait), MaxAttempts or ctx's end.
func (c *Client) call(ctx context.Context, r request) error {
	start := time.Now()
	budget := start.Add(r.wait + c.cfg.RetryFor)
	unknown := false
	for attempt := 0; ; attempt++ {
		ep, leader := c.pick(attempt)
		wait := max(r.wait-time.Since(start), 0)
		var payload []byte
		if r.body != nil {
			var err error
			if payload, err = json.Marshal(r.body(wait)); err != nil {
				return err
			}
		}
		err := c.attempt(ctx, r, ep+r.path, payload, wait)
		if err == nil {
			return nil
		}
		v := classify(err)
		if v == definite {
			return err
		}
		// The remembered leader failed: forget it, so the next attempt
		// asks the endpoints, which redirect to whoever leads now.
		if leader != nil {
			c.leader.CompareAndSwap(leader, nil)
		}
		unknown = unknown || (r.mutating && v == maybe)
		pause := jitter(attempt)
		if ctx.Err() != nil || attempt+1 == c.cfg.MaxAttempts || time.Now().Add(pause).After(budget) {
			return giveUp(ctx, r, start, err, unknown)
		}
		select {
		case <-ctx.Done():
			return giveUp(ctx, r, start, err, unknown)
		case <-time.After(pause):
		}
	}
}

// giveUp is the error of a call that ran out of retries: unknown if any
// attempt may have been applied, else the last error (with the context's
// error when the context ended).
func giveUp(ctx context.Context, r request, start time.Time, last error, unknown bool) error {
	if unknown {
		return &UnknownOutcomeError{RequestID: r.requestID, FirstSent: start, Last: last, Cause: ctx.Err()}
	}
	if ctx.Err() != nil && !errors.Is(last, ctx.Err()) {
		return errors.Join(ctx.Err(), last)
	}
	return last
}

func jitter(attempt int) time.Duration {
	d := backoffBase << min(attempt, 8)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2)
}

// classify says what a failed attempt tells about its effect: an answer
// by its code's class (package codes), a transport failure by whether
// the request was sent.
func classify(err error) verdict {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.class() {
		case codes.NotApplied:
			return notApplied
		case codes.OutcomeUnknown:
			return maybe
		}
		return definite
	}
	if errors.Is(err, ErrRedirectRefused) {
		return definite
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return notApplied // never sent
	}
	return maybe // sent, and then the connection failed or timed out
}

// NotApplied reports whether a call's error guarantees that the command
// had no effect: an answer whose code says so (no leader, a limit, a
// redirect chain that reached no leader) or a connection that was never
// made. A harness that makes its own attempts (MaxAttempts 1) uses it
// to tell "failed" from "outcome unknown".
func NotApplied(err error) bool { return err != nil && classify(err) == notApplied }

// pick returns the base URL for an attempt: the remembered leader, else
// the endpoints in turn.
func (c *Client) pick(attempt int) (string, *string) {
	if l := c.leader.Load(); l != nil {
		return *l, l
	}
	return c.endpoints[attempt%len(c.endpoints)], nil
}

// attempt is one try, bounded by the attempt timeout plus the server's
// wait.
func (c *Client) attempt(ctx context.Context, r request, u string, payload []byte, wait time.Duration) error {
	timeout := c.cfg.AttemptTimeout
	if r.attemptTimeout > 0 {
		timeout = r.attemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+wait)
	defer cancel()
	return c.do(ctx, r.method, u, payload, r.out)
}

// maxRedirects bounds a chain of leader redirects (leadership may move
// while a request chases it).
const maxRedirects = 5

// do sends one request and follows redirects, but only to configured
// endpoints: a Location elsewhere (another host, or http for an https
// node) is refused, so the key is never sent there.
func (c *Client) do(ctx context.Context, method, u string, payload []byte, out any) error {
	for i := 0; ; i++ {
		resp, err := c.send(ctx, method, u, payload)
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		redirect := resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect
		if !redirect || loc == "" || i == maxRedirects {
			return readAnswer(resp, out)
		}
		resp.Body.Close()
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return err
		}
		base, ok := c.trusted[origin(next)]
		if !ok {
			return &RedirectError{From: origin(resp.Request.URL), To: origin(next)}
		}
		c.leader.Store(&base)
		u = next.String()
	}
}

func (c *Client) send(ctx context.Context, method, u string, payload []byte) (*http.Response, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
}

func readAnswer(resp *http.Response, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
