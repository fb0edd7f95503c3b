package api

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"sync"
)

// The hot path's JSON, without reflection (issue 11: decoding and
// encoding were about a tenth of a node's CPU at 64 workers). Both halves
// are exact shortcuts of the general code, which stays the reference:
//   - a request body that is a flat object of known, distinct keys with
//     scalar values is decoded with json.Unmarshal directly; anything else
//     (and any decoding error) goes through decodeStrictSlow, so every
//     refusal and its message are unchanged;
//   - the acquire and release answers are appended by hand, byte for byte
//     what json.Encoder writes (tested against it, fuzzed too).

// keysOf caches jsonKeys per struct type: the set never changes.
var keysOf sync.Map // reflect.Type -> map[string]bool

func knownKeys(t reflect.Type) map[string]bool {
	if k, ok := keysOf.Load(t); ok {
		return k.(map[string]bool)
	}
	k := jsonKeys(t)
	keysOf.Store(t, k)
	return k
}

// flatObject reports whether data is one JSON object whose keys are all
// in known, each once, spelled without escapes, whose values are strings
// or literals (no object or array), with only JSON whitespace around it.
// It does not validate the values: json.Unmarshal does. False means "not
// sure", never "invalid".
func flatObject(data []byte, known map[string]bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	var seen [8]string
	nseen := 0
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(data) && data[end] != '"' {
			if data[end] == '\\' || data[end] < 0x20 {
				return false
			}
			end++
		}
		if end >= len(data) {
			return false
		}
		key := string(data[i+1 : end])
		if !known[key] || nseen == len(seen) {
			return false
		}
		for _, k := range seen[:nseen] {
			if k == key {
				return false
			}
		}
		seen[nseen] = key
		nseen++
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		if i = skipScalar(data, skipSpace(data, i+1)); i < 0 {
			return false
		}
		i = skipSpace(data, i)
		switch {
		case i >= len(data):
			return false
		case data[i] == '}':
			return skipSpace(data, i+1) == len(data)
		case data[i] != ',':
			return false
		}
		i = skipSpace(data, i+1)
	}
}

// skipScalar returns the index after the string or literal at i, or -1.
func skipScalar(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '{', '[', ',', '}', ':':
		return -1
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	}
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonAppender is an answer that writes its own JSON, exactly as
// json.Encoder would (newline included).
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

func (g grantResponse) appendJSON(b []byte) []byte {
	b = g.lockView.appendFields(append(b, '{'))
	b = appendString(append(b, `,"session_token":`...), g.SessionToken)
	if g.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	return append(b, "}\n"...)
}

func (v lockView) appendFields(b []byte) []byte {
	b = appendString(append(b, `"name":`...), v.Name)
	if v.Owner != "" {
		b = appendString(append(b, `,"owner":`...), v.Owner)
	}
	b = strconv.AppendUint(append(b, `,"fencing_token":`...), v.FencingToken, 10)
	b = appendFloat(append(b, `,"lifetime":`...), v.Lifetime)
	return appendFloat(append(b, `,"expires_in":`...), v.ExpiresIn)
}

func (r releasedResponse) appendJSON(b []byte) []byte {
	b = appendString(append(b, `{"name":`...), r.Name)
	b = strconv.AppendBool(append(b, `,"released":`...), r.Released)
	b = strconv.AppendUint(append(b, `,"fencing_token":`...), r.FencingToken, 10)
	return append(b, "}\n"...)
}

// appendString quotes s as json.Encoder does (HTML-safe): printable ASCII
// other than the characters it escapes is copied, anything else is left
// to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat formats f as encoding/json does (ES6 number formatting).
// NaN and infinities never reach an answer (remaining and lifetimes are
// finite); they are written as 0 rather than failing.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
