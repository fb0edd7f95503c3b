package fsm

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// roundTripCases hold, for every kind, only the fields that kind carries
// in its log form, so Decode(Encode(c)) must give back c exactly.
var roundTripCases = []Command{
	{Kind: KindAcquire, Stamp: 1234, Name: "jobs/nightly", Token: tok(7), Lifetime: 30_000, Owner: "host-1", RequestID: "r-1"},
	{Kind: KindAcquire, Stamp: math.MaxInt64, Name: "ünïcödé ☃", Token: tok(0xff), Lifetime: math.MinInt64},
	{Kind: KindAcquire, Stamp: -1},
	{Kind: KindRelease, Stamp: 99, Name: "a", Token: tok(1), RequestID: "r-2"},
	{Kind: KindRelease},
	{Kind: KindRefresh, Stamp: 1 << 40, Name: "b", Token: tok(2), Lifetime: 1, RequestID: "r-3"},
	{Kind: KindRefresh, Stamp: math.MinInt64, Name: string(make([]byte, 300))},
	{Kind: KindTick, Stamp: 42},
	{Kind: KindTick},
	{Kind: KindAnnounce, Stamp: 5, NodeID: "node-1", APIURL: "http://10.0.0.1:8080"},
	{Kind: KindAnnounce},
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range roundTripCases {
		got, err := Decode(c.Encode())
		if err != nil {
			t.Errorf("Decode(Encode(%+v)): %v", c, err)
			continue
		}
		if got != c {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}

// Fields a kind does not carry are dropped, not smuggled into the log.
func TestEncodeDropsFieldsTheKindDoesNotUse(t *testing.T) {
	c := Command{Kind: KindTick, Stamp: 7, Name: "x", Token: tok(1), Lifetime: 3, Owner: "o", RequestID: "r", NodeID: "n", APIURL: "u"}
	got, err := Decode(c.Encode())
	if err != nil || got != (Command{Kind: KindTick, Stamp: 7}) {
		t.Errorf("tick decoded as %+v, %v", got, err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	overflow := []byte{byte(KindTick), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	hugeName := binary.AppendUvarint(binary.AppendVarint([]byte{byte(KindRelease)}, 1), 1<<60)
	bad := map[string][]byte{
		"nil":              nil,
		"empty":            {},
		"kind zero":        {0, 0},
		"unknown kind":     {99, 0},
		"kind only":        {byte(KindTick)},
		"varint overflow":  overflow,
		"huge name length": append(hugeName, 'a'),
	}
	for name, data := range bad {
		if _, err := Decode(data); !errors.Is(err, ErrUndecodable) {
			t.Errorf("%s: Decode error %v, want ErrUndecodable", name, err)
		}
	}
}

// Every strict prefix of a valid entry is truncated, and any extra byte is
// trailing garbage: both must be refused, never half-applied.
func TestDecodeRejectsTruncatedAndTrailing(t *testing.T) {
	for _, c := range roundTripCases {
		data := c.Encode()
		for n := 0; n < len(data); n++ {
			if _, err := Decode(data[:n]); !errors.Is(err, ErrUndecodable) {
				t.Errorf("%v cut to %d of %d bytes: err %v", c.Kind, n, len(data), err)
			}
		}
		if _, err := Decode(append(data[:len(data):len(data)], 0)); !errors.Is(err, ErrUndecodable) {
			t.Errorf("%v with a trailing byte: err %v", c.Kind, err)
		}
	}
}

func TestKindAndOutcomeNames(t *testing.T) {
	for k, want := range map[Kind]string{KindAcquire: "acquire", KindRelease: "release", KindRefresh: "refresh", KindTick: "tick", KindAnnounce: "announce", 200: "kind(200)"} {
		if k.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", k, k.String(), want)
		}
	}
	for o, want := range map[Outcome]string{Granted: "granted", Busy: "busy", NotHeld: "not_held", Released: "released", Refreshed: "refreshed", Ticked: "ticked", Announced: "announced", 0: "unknown"} {
		if o.String() != want {
			t.Errorf("Outcome(%d) = %q, want %q", o, o.String(), want)
		}
	}
}

func TestTokenText(t *testing.T) {
	tk := tok(0xab)
	s := tk.String()
	if len(s) != 32 {
		t.Fatalf("token text %q has length %d", s, len(s))
	}
	if got, err := ParseToken(s); err != nil || got != tk {
		t.Errorf("ParseToken(%q) = %v, %v", s, got, err)
	}
	for _, bad := range []string{"", s[:31], s + "0", "zz" + s[2:]} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%q) err %v, want ErrBadToken", bad, err)
		}
	}
	if !(Token{}).IsZero() || tk.IsZero() || !tk.Equal(tok(0xab)) || tk.Equal(tok(1)) {
		t.Error("IsZero/Equal disagree with ==")
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts survives a
// re-encode. (Byte equality is not required: varints have non-minimal
// forms, and the log replicates the original bytes anyway.)
func FuzzDecode(f *testing.F) {
	for _, c := range roundTripCases {
		f.Add(c.Encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			return
		}
		again, err := Decode(c.Encode())
		if err != nil || again != c {
			t.Fatalf("re-encode of %+v gave %+v, %v", c, again, err)
		}
	})
}
