package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Target is the cluster the load goes to.
type Target struct {
	Endpoints []string    // node URLs; followers redirect to the leader
	Key       string      // API key
	TLS       *tls.Config // for https endpoints; nil for the defaults
}

// The generator shares the cores with the nodes it measures (on one
// machine), so what it spends per pair is taken from the servers' share.
// A worker therefore keeps one HTTP/1.1 connection of its own and speaks
// on it directly: each request is written whole from a reused buffer and
// its answer parsed in place (status line, the four headers that matter,
// the body into a reused buffer), with no transport goroutines, pools,
// header maps or per-call contexts. What goes over the wire is what client.Client
// sends (a v1 acquire, then a release, each with a request id and the
// bearer key), and failures are handled the same way: a redirect is
// followed (and the leader remembered), a transport failure or a
// retryable answer (503, 504 unknown_outcome) is retried with the same
// request id on a new connection until retryFor has passed.

// retryFor bounds the retries of one request, as client.Client.Retry.
const retryFor = 10 * time.Second

// attemptTimeout bounds one try beyond the request's own wait, as
// client.Client.AttemptTimeout.
const attemptTimeout = 5 * time.Second

// maxRedirects bounds a chain of leader redirects.
const maxRedirects = 5

// errRetry marks an answer worth retrying with the same request id.
var errRetry = errors.New("retryable answer")

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("loadgen: status %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// conn is one worker's connection. Not safe for concurrent use.
type conn struct {
	t      Target
	next   int    // endpoint to try after a failure
	base   string // scheme://host the connection is for
	nc     net.Conn
	br     *bufio.Reader
	req    []byte // the request being written
	resp   []byte // the last answer's body
	idBase string // random prefix of this worker's request ids
	seq    uint64
}

func newConn(t Target) (*conn, error) {
	if len(t.Endpoints) == 0 {
		return nil, errors.New("loadgen: no endpoints")
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &conn{t: t, base: strings.TrimRight(t.Endpoints[0], "/"), idBase: hex.EncodeToString(b[:]) + "-"}, nil
}

// requestID appends a fresh request id to dst: a random per-worker prefix
// (unguessable, like client.Client's) and a counter (unique).
func (c *conn) requestID(dst []byte) []byte {
	c.seq++
	dst = append(dst, c.idBase...)
	return strconv.AppendUint(dst, c.seq, 16)
}

func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc, c.br = nil, nil
	}
}

func (c *conn) dial(ctx context.Context) error {
	u, err := url.Parse(c.base)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	if u.Scheme == "https" {
		conf := c.t.TLS.Clone()
		if conf == nil {
			conf = &tls.Config{}
		}
		if conf.ServerName == "" {
			conf.ServerName = u.Hostname()
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return err
		}
		nc = tc
	}
	c.nc, c.br = nc, bufio.NewReaderSize(nc, 4096)
	return nil
}

// call sends method path with body (a JSON object, or nil) and returns
// the 2xx answer's body, which stays valid until the next call. wait is
// how long the server may hold the request.
func (c *conn) call(ctx context.Context, method, path string, body []byte, wait time.Duration) ([]byte, error) {
	deadline := time.Now().Add(retryFor)
	backoff := 20 * time.Millisecond
	for {
		out, err := c.redirects(ctx, method, path, body, wait)
		if err == nil || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return out, err
		}
		var se *StatusError
		if errors.As(err, &se) && !errors.Is(err, errRetry) {
			return nil, err
		}
		// Transport failure or a retryable answer: start over from the
		// next endpoint, which redirects to whoever leads now.
		c.close()
		c.base = strings.TrimRight(c.t.Endpoints[c.next%len(c.t.Endpoints)], "/")
		c.next++
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// redirects makes one attempt, following leader redirects.
func (c *conn) redirects(ctx context.Context, method, path string, body []byte, wait time.Duration) ([]byte, error) {
	for i := 0; ; i++ {
		status, loc, err := c.roundTrip(ctx, method, path, body, wait)
		switch {
		case err != nil:
			return nil, err
		case status == http.StatusTemporaryRedirect && loc != "" && i < maxRedirects:
			if path, err = c.follow(loc); err != nil {
				return nil, err
			}
		case status >= 300:
			return nil, c.statusError(status)
		default:
			return c.resp, nil
		}
	}
}

// follow points the connection at the redirect's host (the leader, kept
// for the worker's next requests) and returns the redirect's path and
// query (which may carry what remains of a wait).
func (c *conn) follow(loc string) (string, error) {
	base, err := url.Parse(c.base)
	if err != nil {
		return "", err
	}
	next, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	if nb := next.Scheme + "://" + next.Host; nb != c.base {
		c.close()
		c.base = nb
	}
	return next.RequestURI(), nil
}

func (c *conn) statusError(status int) error {
	se := &StatusError{Status: status, Body: string(c.resp)}
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(c.resp, &env)
	switch env.Error.Code {
	case "no_leader", "leader_changed", "unavailable", "unknown_outcome":
		return fmt.Errorf("%w: %w", errRetry, se)
	}
	return se
}

// roundTrip writes one request and reads its answer into c.resp.
func (c *conn) roundTrip(ctx context.Context, method, path string, body []byte, wait time.Duration) (int, string, error) {
	if c.nc == nil {
		if err := c.dial(ctx); err != nil {
			return 0, "", err
		}
	}
	dl := time.Now().Add(attemptTimeout + wait)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.nc.SetDeadline(dl)
	c.req = c.writeRequest(c.req[:0], method, path, body)
	if _, err := c.nc.Write(c.req); err != nil {
		c.close()
		return 0, "", err
	}
	status, loc, err := c.readResponse()
	if err != nil {
		c.close()
		return 0, "", err
	}
	return status, loc, nil
}

func (c *conn) writeRequest(b []byte, method, path string, body []byte) []byte {
	host := c.base[strings.Index(c.base, "://")+3:]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, c.t.Key...)
	if body != nil {
		b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// readResponse reads one answer: the status line, the few headers that
// matter here (Content-Length, Transfer-Encoding, Location, Connection)
// without building a header map, and the body into c.resp. A chunked
// body is read with net/http's own chunked reader.
func (c *conn) readResponse() (status int, loc string, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, "", err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, "", fmt.Errorf("loadgen: malformed status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, "", fmt.Errorf("loadgen: malformed status line %q", line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, "", err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, "", fmt.Errorf("loadgen: malformed header %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 || length > maxBody {
				return 0, "", fmt.Errorf("loadgen: bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Location")):
			loc = string(v)
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		c.resp, err = readAll(c.resp[:0], io.LimitReader(httputil.NewChunkedReader(c.br), maxBody))
	case length >= 0:
		c.resp = append(c.resp[:0], make([]byte, length)...)
		_, err = io.ReadFull(c.br, c.resp)
	default: // body until the connection closes
		c.resp, err = readAll(c.resp[:0], io.LimitReader(c.br, maxBody))
		closing = true
	}
	if err == nil && closing {
		c.close()
	}
	return status, loc, err
}

// maxBody bounds an answer's body, as the client's.
const maxBody = 16 << 20

// readAll reads r to its end into dst.
func readAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
