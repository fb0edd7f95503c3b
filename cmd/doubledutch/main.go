// Command doubledutch runs a node of a DoubleDutch lock cluster, a local
// three-node development cluster, certificate generation and health checks.
//
// It only parses configuration and wires the fsm, cluster and api
// packages together; logic worth testing lives in those packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/doubledutch/doubledutch/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `doubledutch: a fault-tolerant distributed lock service

Usage:
  doubledutch [serve] [flags]          run one node (see 'doubledutch serve --help')
  doubledutch PORT [n NAME] [p MS] [t THREADS] [h 0] [a KEY] [d DIR]
                                       the original single-node command line
  doubledutch dev [--port 8001]        a three-node cluster on 127.0.0.1, for trying it out
  doubledutch certs --out DIR --nodes node1,node2,node3
                                       create a CA and node certificates
  doubledutch health [--url URL]       exit 0 when the node answers healthy
  doubledutch backup --url URL --admin-key-file FILE --out FILE
                                       save a consistent, checksummed backup from the leader
  doubledutch restore --from FILE [serve flags]
                                       seed an empty data directory from a backup
  doubledutch transfer-leader [--url URL] [--admin-key-file FILE] [NODE]
                                       hand leadership to NODE (or any up-to-date follower)
  doubledutch version
  doubledutch help [COMMAND]           this text, or a command's flags

Client (nodes, key and CA from flags or DOUBLEDUTCH_ENDPOINTS, DOUBLEDUTCH_API_KEY
or DOUBLEDUTCH_API_KEY_FILE, DOUBLEDUTCH_CA; --json for scripts):
  doubledutch lock NAME [--wait D] [--lifetime D] -- COMMAND [ARGS...]
                                       run COMMAND while holding NAME (fails closed)
  doubledutch acquire|release|refresh|get|list|cluster ...
                                       one lock operation

Each command lists its own flags: 'doubledutch serve --help' (every flag
also has a DOUBLEDUTCH_* environment variable), 'doubledutch dev --help',
'doubledutch certs --help', 'doubledutch health --help', 'doubledutch lock --help'.
`

// isHelp reports whether a first argument asks for the usage text rather
// than a node: without this check "--help" would reach serve's flags.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && isHelp(args[0]) {
		if len(args) > 1 && !isHelp(args[1]) { // help COMMAND
			return run([]string{args[1], "--help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd := "serve"
	if len(args) > 0 && !isPort(args[0]) && (len(args[0]) == 0 || args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	if c, ok := clientCommands()[cmd]; ok {
		return c(ctx, args, getenv, stdout, stderr)
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCommand(ctx, args, getenv, stdout, stderr)
	case "dev":
		err = devCommand(ctx, args, stdout, stderr)
	case "certs":
		err = certsCommand(args, stdout, stderr)
	case "health":
		err = healthCommand(ctx, args, getenv, stdout, stderr)
	case "backup":
		err = backupCommand(ctx, args, getenv, stdout, stderr)
	case "restore":
		err = restoreCommand(args, getenv, stdout, stderr)
	case "transfer-leader":
		err = transferCommand(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "doubledutch", buildinfo.Version)
	default:
		fmt.Fprintf(stderr, "doubledutch: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if err != errUsage {
			fmt.Fprintln(stderr, "doubledutch:", err)
		}
		return 1
	}
	return 0
}
