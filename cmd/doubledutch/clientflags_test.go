package main

import (
	"flag"
	"io"
	"testing"
	"time"
)

// --hedge-after (and $DOUBLEDUTCH_HEDGE_AFTER) reach the client's
// configuration: a duration, 0 or off for no hedging, empty for the
// client's default.
func TestHedgeAfterFlag(t *testing.T) {
	for _, tc := range []struct {
		env  string
		args []string
		want time.Duration
		bad  bool
	}{
		{want: 0}, // client.Config's zero: the default, 1 s
		{args: []string{"--hedge-after", "250ms"}, want: 250 * time.Millisecond},
		{env: "2s", want: 2 * time.Second},
		{env: "2s", args: []string{"--hedge-after", "300ms"}, want: 300 * time.Millisecond},
		{args: []string{"--hedge-after", "off"}, want: -1},
		{env: "0", want: -1},
		{args: []string{"--hedge-after", "-1s"}, bad: true},
		{args: []string{"--hedge-after", "soon"}, bad: true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cf clientFlags
		env := map[string]string{"DOUBLEDUTCH_ENDPOINTS": "http://127.0.0.1:1", "DOUBLEDUTCH_HEDGE_AFTER": tc.env}
		cf.register(fs, func(k string) string { return env[k] }, false)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := cf.config()
		if tc.bad {
			if err == nil {
				t.Errorf("env %q args %q: accepted", tc.env, tc.args)
			}
			continue
		}
		if err != nil || cfg.HedgeAfter != tc.want {
			t.Errorf("env %q args %q: HedgeAfter %v (%v), want %v", tc.env, tc.args, cfg.HedgeAfter, err, tc.want)
		}
	}
}
