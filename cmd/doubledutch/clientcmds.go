package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// clientCommand is a client subcommand; it returns the exit code.
type clientCommand func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int

// clientCommands are the lock operations from the command line,
// registered in main's subcommand table.
func clientCommands() map[string]clientCommand {
	return map[string]clientCommand{
		"lock":    lockCommand,
		"acquire": acquireCommand,
		"release": releaseCommand,
		"refresh": refreshCommand,
		"get":     getCommand,
		"list":    listCommand,
		"cluster": clusterCommand,
	}
}

// opTimeout bounds one client subcommand (besides an acquire's wait).
const opTimeout = 30 * time.Second

// setup parses args for a simple subcommand and returns its positionals
// and client, or an exit code.
func setup(name, synopsis string, nPos int, args []string, getenv func(string) string, stdout, stderr io.Writer,
	extra func(fs flagSet)) ([]string, *client.Client, *clientFlags, int) {
	fs := newFlags(name, synopsis, stdout)
	cf := &clientFlags{}
	cf.register(fs, getenv, true)
	if extra != nil {
		extra(fs)
	}
	pos, _, err := parseArgs(fs, args, 0)
	if err == nil && len(pos) != nPos {
		err = fmt.Errorf("want %d argument(s), got %d", nPos, len(pos))
	}
	if err != nil {
		return nil, nil, nil, parseFailed(stderr, name, err, 2)
	}
	c, err := cf.client()
	if err != nil {
		return nil, nil, nil, fail(stderr, exitError, err)
	}
	return pos, c, cf, -1
}

func acquireCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var opts client.AcquireOptions
	pos, c, cf, code := setup("acquire", "acquire NAME [--lifetime D] [--wait D] [--owner LABEL] [--json]", 1, args, getenv, stdout, stderr,
		func(fs flagSet) {
			fs.DurationVar(&opts.Lifetime, "lifetime", 30*time.Second, "lock lifetime")
			fs.DurationVar(&opts.Wait, "wait", 0, "how long to wait while the lock is held")
			fs.StringVar(&opts.Owner, "owner", "", "label shown to readers")
		})
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout+opts.Wait)
	defer cancel()
	l, err := c.Acquire(ctx, pos[0], opts)
	if errors.Is(err, client.ErrBusy) {
		return fail(stderr, exitNotAcquired, fmt.Errorf("%s is busy: not acquired within %v", pos[0], opts.Wait))
	}
	if err != nil {
		return fail(stderr, exitError, err)
	}
	if cf.json {
		printJSON(stdout, map[string]any{"name": l.Name(), "fencing_token": l.Fence(), "session_token": l.Token(),
			"lifetime": secs(l.Lifetime()), "expires_in": secs(l.Info().ExpiresIn)})
		return 0
	}
	fmt.Fprintf(stdout, "acquired %s: fence %d, token %s, lifetime %v\n", l.Name(), l.Fence(), l.Token(), l.Lifetime())
	return 0
}

func releaseCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	pos, c, cf, code := setup("release", "release NAME TOKEN [--json]", 2, args, getenv, stdout, stderr, nil)
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := c.Release(ctx, pos[0], pos[1], ""); err != nil {
		return fail(stderr, exitError, err)
	}
	if cf.json {
		printJSON(stdout, map[string]any{"name": pos[0], "released": true})
	} else {
		fmt.Fprintf(stdout, "released %s\n", pos[0])
	}
	return 0
}

func refreshCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var lifetime time.Duration
	pos, c, cf, code := setup("refresh", "refresh NAME TOKEN [--lifetime D] [--json]", 2, args, getenv, stdout, stderr,
		func(fs flagSet) { fs.DurationVar(&lifetime, "lifetime", 30*time.Second, "new lifetime, from now") })
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	info, err := c.Refresh(ctx, pos[0], pos[1], lifetime, "")
	if err != nil {
		return fail(stderr, exitError, err)
	}
	if cf.json {
		printJSON(stdout, infoJSON(info))
	} else {
		fmt.Fprintf(stdout, "refreshed %s: fence %d, expires in %v\n", info.Name, info.FencingToken, info.ExpiresIn.Round(time.Millisecond))
	}
	return 0
}

func getCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	pos, c, cf, code := setup("get", "get NAME [--json]", 1, args, getenv, stdout, stderr, nil)
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	info, err := c.Get(ctx, pos[0])
	switch {
	case errors.Is(err, client.ErrNotFound) && cf.json:
		printJSON(stdout, map[string]any{"name": pos[0], "held": false})
	case errors.Is(err, client.ErrNotFound):
		fmt.Fprintf(stdout, "%s is free\n", pos[0])
	case err != nil:
		return fail(stderr, exitError, err)
	case cf.json:
		printJSON(stdout, infoJSON(info))
	default:
		fmt.Fprintf(stdout, "%s is held: fence %d, owner %q, expires in %v, %d waiting\n",
			info.Name, info.FencingToken, info.Owner, info.ExpiresIn.Round(time.Millisecond), info.Waiters)
	}
	return 0
}

func infoJSON(l *client.LockInfo) map[string]any {
	return map[string]any{"name": l.Name, "held": true, "owner": l.Owner, "fencing_token": l.FencingToken,
		"lifetime": secs(l.Lifetime), "expires_in": secs(l.ExpiresIn), "waiters": l.Waiters}
}

func listCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var prefix string
	_, c, cf, code := setup("list", "list [--prefix P] [--json]", 0, args, getenv, stdout, stderr,
		func(fs flagSet) { fs.StringVar(&prefix, "prefix", "", "only names starting with this") })
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var all []map[string]any
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !cf.json {
		fmt.Fprintln(tw, "NAME\tFENCE\tEXPIRES IN\tOWNER")
	}
	for after := ""; ; {
		page, err := c.List(ctx, prefix, after, 1000)
		if err != nil {
			return fail(stderr, exitError, err)
		}
		for _, l := range page.Locks {
			all = append(all, infoJSON(&l))
			fmt.Fprintf(tw, "%s\t%d\t%v\t%s\n", l.Name, l.FencingToken, l.ExpiresIn.Round(time.Millisecond), l.Owner)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if cf.json {
		printJSON(stdout, map[string]any{"locks": append([]map[string]any{}, all...)})
		return 0
	}
	tw.Flush()
	return 0
}

func clusterCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	_, c, cf, code := setup("cluster", "cluster [--json]", 0, args, getenv, stdout, stderr, nil)
	if code >= 0 {
		return code
	}
	nodes := c.Nodes(ctx)
	down := 0
	var out []map[string]any
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tNODE\tSTATE\tLEADER\tTERM\tCOMMIT\tAPPLIED\tLAST CONTACT")
	for _, n := range nodes {
		if n.Err != nil {
			down++
			out = append(out, map[string]any{"endpoint": n.Endpoint, "error": oneLine(n.Err)})
			fmt.Fprintf(tw, "%s\tunreachable: %s\n", n.Endpoint, oneLine(n.Err))
			continue
		}
		out = append(out, map[string]any{"endpoint": n.Endpoint, "status": n.Status})
		s := n.Status
		leader, _ := s["leader"].(map[string]any)
		contact, _ := s["last_contact"].(float64)
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%v\t%v\t%v\t%v\n", n.Endpoint, s["node_id"], s["raft_state"], leader["id"],
			s["term"], s["commit_index"], s["applied_index"], seconds(contact).Round(time.Millisecond))
	}
	if cf.json {
		printJSON(stdout, out)
	} else {
		tw.Flush()
	}
	if down > 0 {
		return fail(stderr, exitError, fmt.Errorf("%d of %d nodes unreachable", down, len(nodes)))
	}
	return 0
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// flagSet is what subcommands declare their own flags on.
type flagSet interface {
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	StringVar(p *string, name string, value string, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}
