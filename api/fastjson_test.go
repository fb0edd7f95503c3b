package api

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"
)

// bodySamples are request bodies of every kind the handlers see: plain
// ones (the short way), and ones the short way must leave to the long
// way (escapes, nesting, duplicates, unknown or miscased keys, trailing
// data, wrong types, broken JSON).
var bodySamples = []string{
	`{}`, ` { } `, `{"request_id":"0123456789abcdef0123","lifetime":10,"wait":30}`,
	`{"token":"00112233445566778899aabbccddeeff","request_id":"0123456789abcdef0123"}`,
	`{"lifetime":null}`, `{"lifetime":1e3}`, `{"lifetime":-0.5}`, `{"owner":"a\"b"}`,
	`{"owner":"\u00e9"}`, `{"\u006cifetime":5}`, `{"Lifetime":5}`, `{"lifetime":5,"lifetime":6}`,
	`{"lifetime":"5"}`, `{"lifetime":[5]}`, `{"lifetime":{}}`, `{"owner":5}`, `{"wait":true}`,
	`{"lifetime":5}x`, `{"lifetime":5}{}`, `{"lifetime":5,}`, `{"lifetime" 5}`, `{"lifetime":}`,
	`{"lifetime":01}`, `{"lifetime":1.}`, `{"lifetime":tru}`, `{"owner":"a`, `{"owner":"a\`, `[1]`,
	`"x"`, `{"nope":1}`, `{"token":"x","request_id":"y","lifetime":3}`, "{\"owner\":\"a\tb\"}",
	`{"owner":"<&>"}`, "{\"lifetime\":5}\v", `{"lifetime":5` + "\n}",
}

// checkShortcut asserts that decodeStrict (short way first) and
// decodeStrictSlow (the reference) agree on data for the body type of v.
func checkShortcut[T any](t *testing.T, data []byte) {
	t.Helper()
	var fast, slow T
	errFast := decodeStrict(data, &fast)
	errSlow := badRequest("request body is not valid UTF-8")
	if utf8.Valid(data) {
		errSlow = decodeStrictSlow(data, &slow)
	}
	if (errFast == nil) != (errSlow == nil) || (errFast != nil && errFast.Error() != errSlow.Error()) {
		t.Fatalf("%T %q: short way %v, reference %v", fast, data, errFast, errSlow)
	}
	if errFast == nil && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T %q: short way %+v, reference %+v", fast, data, fast, slow)
	}
}

func TestDecodeStrictShortcutMatchesReference(t *testing.T) {
	for _, s := range bodySamples {
		checkShortcut[acquireBody](t, []byte(s))
		checkShortcut[releaseBody](t, []byte(s))
		checkShortcut[refreshBody](t, []byte(s))
	}
	// The hot bodies do take the short way.
	for _, s := range bodySamples[:4] {
		if !flatObject([]byte(s), knownKeys(reflect.TypeOf(acquireBody{}))) &&
			!flatObject([]byte(s), knownKeys(reflect.TypeOf(releaseBody{}))) {
			t.Errorf("%s: not taken the short way", s)
		}
	}
}

func FuzzDecodeStrictShortcut(f *testing.F) {
	for _, s := range bodySamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkShortcut[acquireBody](t, data)
		checkShortcut[refreshBody](t, data)
	})
}

func encoderJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkAppender(t testing.TB, v jsonAppender) {
	t.Helper()
	if got, want := v.appendJSON(nil), encoderJSON(t, v); !bytes.Equal(got, want) {
		t.Fatalf("%T: appended %s, json.Encoder %s", v, got, want)
	}
}

func TestAppendJSONMatchesEncoder(t *testing.T) {
	names := []string{"", "a", "orders/42", "é", "a\"b\\c", "<script>&", "tab\there", "\u2028", "bad\xffutf8", "\x7f"}
	floats := []float64{0, 1, 30, 0.001, 29.999, 1e-7, 1e-6, 123456789012, 1e21, 1e22, 2.5e-10, -0.0,
		math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0 / 3}
	for i, n := range names {
		for j, f := range floats {
			view := lockView{Name: n, Owner: names[(i+j)%len(names)], FencingToken: uint64(i*j) << 40,
				Lifetime: f, ExpiresIn: floats[(i+j)%len(floats)]}
			checkAppender(t, grantResponse{lockView: view, SessionToken: "00112233445566778899aabbccddeeff", Duplicate: j%2 == 0})
			checkAppender(t, releasedResponse{Name: n, Released: j%2 == 1, FencingToken: uint64(j)})
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("name", "owner", uint64(7), 30.0, 12.5, true)
	f.Add("<é>", "", uint64(0), 1e-7, 1e21, false)
	f.Fuzz(func(t *testing.T, name, owner string, fence uint64, lifetime, expires float64, dup bool) {
		if math.IsNaN(lifetime) || math.IsInf(lifetime, 0) || math.IsNaN(expires) || math.IsInf(expires, 0) {
			t.Skip("encoding/json refuses these; answers never carry them")
		}
		checkAppender(t, grantResponse{lockView: lockView{Name: name, Owner: owner, FencingToken: fence,
			Lifetime: lifetime, ExpiresIn: expires}, SessionToken: owner, Duplicate: dup})
		checkAppender(t, releasedResponse{Name: name, Released: dup, FencingToken: fence})
	})
}
