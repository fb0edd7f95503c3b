package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// Request bodies are read in full, under a deadline of their own, once the
// key is checked and before the handler runs. net/http drains an unread
// body before it writes an answer, so a client that sends headers and then
// stalls inside its body would otherwise hold its connection (and a
// descriptor) for good, without even getting its 401. A server-wide
// ReadTimeout cannot be used instead: it would also cut lock requests that
// wait up to MaxWait for their answer. Answers given without reading the
// body (before the key check, or a redirect) end it instead: see recorder.
// Reading only after the key check means that only key holders can make a
// node buffer a body.

// hasBody reports whether r may carry a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// preloadBody reads r's whole body (at most MaxBodyBytes) within
// BodyTimeout and hands the handler an in-memory copy. On failure the
// connection is marked to close and the recorder ends the body.
func (s *Server) preloadBody(w http.ResponseWriter, r *http.Request) error {
	if !hasBody(r) {
		return nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	fail := func(err error) error {
		w.Header().Set("Connection", "close")
		return err
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return fail(newError(ErrTooLarge, "request body is %d bytes; the maximum is %d", r.ContentLength, s.cfg.MaxBodyBytes))
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		// Nothing worth echoing from the error itself.
		s.log.Debug("request body not received", "method", r.Method, "path", clip(r.URL.EscapedPath()), "error", err)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fail(newError(ErrSlowBody, "the request body did not arrive within %v", s.cfg.BodyTimeout))
		}
		return fail(badRequest("the request body could not be read (malformed chunked encoding?)"))
	}
	if int64(len(data)) > s.cfg.MaxBodyBytes {
		return fail(newError(ErrTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes))
	}
	_ = rc.SetReadDeadline(time.Time{})
	r.Body = &preloaded{Reader: bytes.NewReader(data), data: data}
	if rec, ok := w.(*recorder); ok {
		rec.unreadBody = false
	}
	return nil
}

// preloaded is a body preloadBody read: decodeBody takes its bytes
// without copying them again.
type preloaded struct {
	*bytes.Reader
	data []byte
}

// Close does nothing: the bytes are in memory.
func (*preloaded) Close() error { return nil }

// decodeBody reads an optional JSON object into v, strictly: valid UTF-8
// (JSON decoding would silently turn invalid bytes into U+FFFD), keys
// spelled exactly as documented (encoding/json matches keys in any case),
// each key once (encoding/json keeps the last of duplicates, so
// {"lifetime":-1,"lifetime":5} would pass validation), no unknown keys
// (a typo must not silently fall back to a default), nothing after the
// object. An empty body leaves v as it is. The body was already bounded
// and read by preloadBody; the limit is applied again for handlers
// called without it (tests).
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	var data []byte
	if pb, ok := r.Body.(*preloaded); ok && pb.Len() == len(pb.data) {
		data = pb.data // already bounded by preloadBody
		r.Body = http.NoBody
	} else {
		var err error
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newError(ErrTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		} else if err != nil {
			return badRequest("the request body could not be read")
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeStrict(data, v)
}

// decodeStrict decodes one JSON object from data into the struct v. A
// plain body takes the short way (see fastjson.go); whatever the short way
// is not sure of, or fails to decode, takes the long one, which gives the
// answer and its message.
func decodeStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return badRequest("request body is not valid UTF-8")
	}
	// A failed Unmarshal may have set some fields; the long way then sets
	// every field the body names again, or fails (and v is dropped).
	if flatObject(data, knownKeys(reflect.TypeOf(v).Elem())) && json.Unmarshal(data, v) == nil {
		return nil
	}
	return decodeStrictSlow(data, v)
}

// decodeStrictSlow is decodeStrict's general path: it walks the keys, then
// decodes with unknown fields refused.
func decodeStrictSlow(data []byte, v any) error {
	if err := checkKeys(data, knownKeys(reflect.TypeOf(v).Elem())); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body is not the expected JSON object: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body has data after the JSON object")
	}
	return nil
}

// checkKeys walks the top-level object's keys: each must be one of known,
// spelled exactly, and appear once. Values are skipped unparsed.
func checkKeys(data []byte, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return badRequest("request body must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return badRequest("request body is not valid JSON")
		}
		key, _ := t.(string)
		switch {
		case !known[key]:
			return badRequest("unknown field %q in the request body (field names are case-sensitive)", clip(key))
		case seen[key]:
			return badRequest("field %q is given more than once", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return badRequest("request body is not valid JSON")
		}
	}
	return nil
}

// jsonKeys lists the JSON names of a struct's fields, embedded ones too.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k := range jsonKeys(f.Type) {
				keys[k] = true
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && f.IsExported() {
			keys[name] = true
		}
	}
	return keys
}

// jsonProblem says what is wrong without echoing the client's input at
// length (a type error names the field and the expected type).
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + clip(te.Field) + " must be a " + te.Type.String()
	}
	return clip(err.Error())
}
