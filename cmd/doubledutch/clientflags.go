package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// Exit codes of the client subcommands (documented in README.md, "Using
// locks from scripts"). `lock` otherwise exits with its command's status.
const (
	exitError       = 1   // a client subcommand failed
	exitNotAcquired = 75  // the lock stayed busy past --wait (EX_TEMPFAIL)
	exitLost        = 76  // lock: the lock could not be kept; the command was stopped
	exitLockFailed  = 125 // lock: failed before the command ran
	exitCannotRun   = 126 // lock: the command cannot be executed
	exitNoCommand   = 127 // lock: the command was not found
)

// clientFlags are the flags every client subcommand shares.
type clientFlags struct {
	endpoints  string
	key        string
	keyFile    string
	ca         string
	hedgeAfter string
	json       bool
}

// register declares the shared flags on fs, defaulting from the
// environment; --json too, for the subcommands that print results.
func (f *clientFlags) register(fs *flag.FlagSet, getenv func(string) string, withJSON bool) {
	fs.StringVar(&f.endpoints, "endpoints", getenv("DOUBLEDUTCH_ENDPOINTS"), "comma-separated node URLs, as the nodes advertise them ($DOUBLEDUTCH_ENDPOINTS)")
	fs.StringVar(&f.key, "api-key", getenv("DOUBLEDUTCH_API_KEY"), "API key ($DOUBLEDUTCH_API_KEY; prefer the environment or --api-key-file)")
	fs.StringVar(&f.keyFile, "api-key-file", getenv("DOUBLEDUTCH_API_KEY_FILE"), "file whose first line is the API key ($DOUBLEDUTCH_API_KEY_FILE)")
	fs.StringVar(&f.ca, "ca", getenv("DOUBLEDUTCH_CA"), "CA certificate (PEM) that signs the nodes' certificates ($DOUBLEDUTCH_CA)")
	fs.StringVar(&f.hedgeAfter, "hedge-after", getenv("DOUBLEDUTCH_HEDGE_AFTER"), "send a request that has had no answer for this long to another node too; 0 or off: never (default 1s; $DOUBLEDUTCH_HEDGE_AFTER)")
	if withJSON {
		fs.BoolVar(&f.json, "json", false, "print JSON for scripts")
	}
}

// client builds the API client the flags describe.
func (f *clientFlags) client() (*client.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	c, err := client.NewClient(cfg)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "client: "))
	}
	return c, nil
}

// config is the client configuration the flags describe.
func (f *clientFlags) config() (client.Config, error) {
	var eps []string
	for _, e := range strings.Split(f.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return client.Config{}, errors.New("no endpoints: set --endpoints or DOUBLEDUTCH_ENDPOINTS (e.g. https://node1:8000,https://node2:8000)")
	}
	key := f.key
	if key == "" && f.keyFile != "" {
		data, err := os.ReadFile(f.keyFile)
		if err != nil {
			return client.Config{}, fmt.Errorf("API key file: %w", err)
		}
		key, _, _ = strings.Cut(string(data), "\n")
		key = strings.TrimSpace(key)
	}
	hedge, err := parseHedgeAfter(f.hedgeAfter)
	if err != nil {
		return client.Config{}, err
	}
	return client.Config{Endpoints: eps, APIKey: key, CAFile: f.ca, HedgeAfter: hedge}, nil
}

// parseHedgeAfter reads --hedge-after: empty for the client's default,
// "0" or "off" for no hedging (client.Config spells that negative).
func parseHedgeAfter(s string) (time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--hedge-after %q: want a duration such as 500ms, or 0 or off", s)
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}

// parseArgs parses flags that may come before or after the positional
// arguments ("lock NAME --wait 5s" and "lock --wait 5s NAME"). After
// maxPos positionals (0: no limit), or after "--", parsing stops and the
// rest is returned untouched (the command of `lock`).
func parseArgs(fs *flag.FlagSet, args []string, maxPos int) (pos, rest []string, err error) {
	var tail []string
	dash := slices.Index(args, "--")
	if dash >= 0 {
		args, tail = args[:dash], args[dash+1:]
	}
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on every error
	defer func() { fs.Usage = usage }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
			}
			return nil, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if maxPos > 0 && len(pos) == maxPos {
			if dash >= 0 {
				return nil, nil, fmt.Errorf("unexpected %q before --", args[0])
			}
			return pos, args, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, tail, nil
}

// newFlags returns a flag set for a client subcommand whose usage line is
// synopsis. Parse errors are not printed by the flag package (errors are
// one line, printed by parseFailed), and --help makes parseArgs print the
// usage to stdout.
func newFlags(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: doubledutch %s\n\nFlags (before or after the arguments):\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// fail prints err as one line and returns code.
func fail(stderr io.Writer, code int, err error) int {
	fmt.Fprintln(stderr, "doubledutch:", oneLine(err))
	return code
}

// oneLine is err's text on one line, without the client package's
// "doubledutch: " prefix (the command prints its own).
func oneLine(err error) string {
	return strings.TrimPrefix(strings.Join(strings.Fields(err.Error()), " "), "doubledutch: ")
}

// parseFailed reports a parse error as one line (nothing for --help) and
// returns the exit code: 0 for --help.
func parseFailed(stderr io.Writer, cmd string, err error, code int) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "doubledutch %s: %s (see doubledutch %s --help)\n", cmd, oneLine(err), cmd)
	return code
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) {
	data, _ := json.Marshal(v)
	fmt.Fprintln(w, string(data))
}

func secs(d time.Duration) float64 { return d.Seconds() }
