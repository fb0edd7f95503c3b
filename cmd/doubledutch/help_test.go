package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpListsSubcommands: `doubledutch --help` used to reach serve's flag
// set and print its flags instead of the subcommands.
func TestHelpListsSubcommands(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help", "help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit code %d; stderr %q", arg, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"doubledutch dev", "doubledutch certs", "doubledutch health", "'doubledutch serve --help'"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, out)
			}
		}
		if strings.Contains(out+stderr.String(), "-api-key") {
			t.Errorf("%s printed serve's flags instead of the subcommands", arg)
		}
	}
}

// TestCommandHelpShowsItsFlags: each place the usage text points at lists
// that command's flags and exits 0.
func TestCommandHelpShowsItsFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"serve", "--help"}, "-api-key"},
		{[]string{"help", "serve"}, "-api-key"},
		{[]string{"dev", "--help"}, "-port"},
		{[]string{"help", "dev"}, "-port"},
		{[]string{"certs", "--help"}, "-nodes"},
		{[]string{"health", "--help"}, "-url"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, func(string) string { return "" }, &stdout, &stderr)
		if code != 0 {
			t.Errorf("%v: exit code %d", tc.args, code)
		}
		if !strings.Contains(stdout.String()+stderr.String(), tc.flag) {
			t.Errorf("%v: output lacks %s:\n%s%s", tc.args, tc.flag, stdout.String(), stderr.String())
		}
	}
}
