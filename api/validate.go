package api

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validation happens before anything is proposed: a bad request gets a 400
// that says what is wrong and never reaches the log (docs/design.md,
// Bad input).

// checkName accepts a non-empty, bounded, printable UTF-8 lock name.
func (c *Config) checkName(name string) error {
	if name == "" {
		return badRequest("lock name is empty")
	}
	return checkText("lock name", name, c.MaxNameLength)
}

// checkURL refuses a path and query longer than any valid request's (a
// name fully percent-encoded, a key, a token and the numbers), before the
// request is routed: a follower would otherwise echo it whole in the
// Location header of its redirect, and error bodies would quote it.
func (c *Config) checkURL(r *http.Request) error {
	max := 4*c.MaxNameLength + 2048
	if n := len(r.URL.EscapedPath()) + len(r.URL.RawQuery); n > max {
		return newError(ErrURITooLong, "the request URL is %d bytes long; no valid request needs more than %d", n, max)
	}
	return nil
}

// checkOwner accepts an optional, bounded, printable UTF-8 owner label.
// It refuses U+FFFD too: JSON decoding turns a lone surrogate escape
// ("\ud800") into it silently, so it stands for text the client did not
// mean, and a label has no use for it.
func (c *Config) checkOwner(owner string) error {
	if strings.ContainsRune(owner, utf8.RuneError) {
		return badRequest("owner contains U+FFFD, the replacement character (invalid text or a lone surrogate escape)")
	}
	return checkText("owner", owner, c.MaxOwnerLength)
}

// checkText bounds s in bytes and rejects invalid UTF-8 and control or
// other non-printable characters (they would garble logs and listings).
func checkText(what, s string, max int) error {
	if len(s) > max {
		return badRequest("%s is %d bytes long; the maximum is %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return badRequest("%s is not valid UTF-8", what)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return badRequest("%s has a control or non-printable character at byte %d", what, i)
		}
	}
	return nil
}

// checkRequestID accepts an optional id of MinRequestIDLength to
// MaxRequestIDLength printable ASCII characters without spaces. The
// minimum length is there because a repeat of an id is answered with the
// first answer, session token included: an id must be as hard to guess as
// a secret (the Go client and the server draw 128 random bits).
func checkRequestID(id string) error {
	if id == "" {
		return nil
	}
	if len(id) < MinRequestIDLength || len(id) > MaxRequestIDLength {
		return badRequest("request id is %d bytes long; it must be %d to %d (an unguessable value, e.g. 32 random hex digits)",
			len(id), MinRequestIDLength, MaxRequestIDLength)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b > '~' {
			return badRequest("request id may hold only printable ASCII without spaces")
		}
	}
	return nil
}

// parseSeconds reads a number of seconds from text. It accepts what
// strconv.ParseFloat does but rejects NaN and infinities.
func parseSeconds(what, text string) (float64, error) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, badRequest("%s must be a finite number of seconds, not %q", what, clip(text))
	}
	return f, nil
}

// lifetime converts seconds to a lock lifetime: strictly positive, at most
// MaxLifetime, whole milliseconds (the lease clock's unit).
func (c *Config) lifetime(what string, sec float64) (time.Duration, error) {
	if math.IsNaN(sec) || math.IsInf(sec, 0) || sec <= 0 {
		return 0, badRequest("%s must be a positive number of seconds", what)
	}
	if sec > c.MaxLifetime.Seconds() {
		return 0, badRequest("%s must be at most %g seconds", what, c.MaxLifetime.Seconds())
	}
	d := time.Duration(math.Round(sec*1000)) * time.Millisecond
	if d < time.Millisecond {
		return 0, badRequest("%s must be at least 0.001 seconds", what)
	}
	return d, nil
}

// wait converts seconds to a wait: zero or more, at most MaxWait.
func (c *Config) wait(what string, sec float64) (time.Duration, error) {
	if math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 {
		return 0, badRequest("%s must be zero or a positive number of seconds", what)
	}
	if sec > c.MaxWait.Seconds() {
		return 0, badRequest("%s must be at most %g seconds", what, c.MaxWait.Seconds())
	}
	return time.Duration(math.Round(sec*1000)) * time.Millisecond, nil
}

// parseQuery parses a raw query strictly: a query that does not parse, or
// that repeats one of the names in single, is a bad request (a repeated
// lockname would otherwise silently pick one of two locks).
func parseQuery(raw string, single ...string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("query string does not parse: %v", err)
	}
	for _, k := range single {
		if len(q[k]) > 1 {
			return nil, badRequest("%s is given more than once", k)
		}
	}
	return q, nil
}

// optSeconds reads an optional seconds parameter; ok is false if absent.
func optSeconds(q url.Values, key string) (sec float64, ok bool, err error) {
	v, ok := q[key]
	if !ok {
		return 0, false, nil
	}
	sec, err = parseSeconds(key, v[0])
	return sec, true, err
}

// clip shortens user input echoed in an error message.
func clip(s string) string { return clipN(s, 64) }

// clipN shortens s to at most max bytes plus "...", cutting at a rune
// boundary so that valid UTF-8 stays valid.
func clipN(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
