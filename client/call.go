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
	body     func(wait time.Duration) any
	out      any
	wait     time.Duration // how long the server may hold the request
	mutating bool
	// anyNode: every node answers it itself (not only the leader), so
	// the node that answers is not thereby the leader.
	anyNode   bool
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
	var uErr *unfollowedError
	if errors.As(err, &uErr) {
		return notApplied // the redirect was not followed: never reached a leader
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

// maxRedirects bounds a chain of leader redirects (leadership may move
// while a request chases it).
const maxRedirects = 5

// do sends one hop after another, following redirects only to trusted
// nodes (configured, or reported members: see redirectBase): a Location
// elsewhere (another host, or http for an https node) is refused, so the
// key is never sent there. h watches the hops (for hedging) and may veto
// one. A success answer's body is returned undecoded, so that concurrent
// attempts never write into the caller's value; the winner's is decoded.
func (c *Client) do(ctx context.Context, method, u string, payload []byte, h hopWatcher) ([]byte, error) {
	for i := 0; ; i++ {
		if err := h.begin(u); err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, method, u, payload)
		if err != nil {
			return nil, err
		}
		h.answered()
		loc := resp.Header.Get("Location")
		redirect := resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect
		if !redirect || loc == "" || i == maxRedirects {
			return readBody(resp)
		}
		resp.Body.Close()
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, err
		}
		base, err := c.redirectBase(ctx, resp.Request.URL, next)
		if err != nil {
			return nil, err
		}
		if err := h.follow(next, base); err != nil {
			return nil, err
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

// readBody reads an answer: its body when it is a success, else its
// error.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp.StatusCode, data)
	}
	return data, nil
}

func readAnswer(resp *http.Response, out any) error {
	data, err := readBody(resp)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(data, out)
}
