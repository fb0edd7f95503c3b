package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

// Operator commands: backup, restore and transfer-leader.

// opsClient is the HTTP side of the operator commands: the node's URL,
// the admin key, and a client that carries the key across the redirect to
// the leader (the operator trusts every node of the cluster).
type opsClient struct {
	base, key string
	http      *http.Client
}

// opsFlags declares the flags every operator command shares. They take
// the admin key, not the lock key: a backup carries every session token
// (whoever reads one can release another client's lock) and a transfer
// disturbs every client, so neither is for lock clients. The flags and
// variables are serve's, so one environment serves both.
func opsFlags(name string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, func() (*opsClient, error)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv(envName("api-url"))
	if def == "" {
		def = "https://127.0.0.1:8000"
	}
	base := fs.String("url", def, "any node's API URL (default $DOUBLEDUTCH_API_URL); the request follows the redirect to the leader")
	key := fs.String("admin-key", getenv(envName("admin-key")), "admin key (default $DOUBLEDUTCH_ADMIN_KEY); the lock API key is refused")
	keyFile := fs.String("admin-key-file", getenv(envName("admin-key-file")), "file whose first line is the admin key, when --admin-key is empty (default $DOUBLEDUTCH_ADMIN_KEY_FILE, as on the nodes)")
	ca := fs.String("ca", getenv(envName("health-ca")), "CA to verify the nodes' certificates")
	insecure := fs.Bool("insecure", false, "do not verify the nodes' certificates")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the answer")
	return fs, func() (*opsClient, error) {
		k, err := (&Config{AdminKey: *key, AdminKeyFile: *keyFile}).loadAdminKey()
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, errors.New("give the admin key with --admin-key, --admin-key-file, " + envName("admin-key") + " or " + envName("admin-key-file"))
		}
		*key = k
		tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				return nil, err
			}
			tlsConf.RootCAs = x509.NewCertPool()
			if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s", *ca)
			}
		}
		c := &opsClient{base: strings.TrimRight(*base, "/"), key: *key}
		c.http = &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: tlsConf},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				req.Header.Set("Authorization", "Bearer "+c.key)
				return nil
			}}
		return c, nil
	}
}

// do sends a request; a non-2xx answer becomes an error carrying its body.
func (c *opsClient) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// backupCommand saves GET /v1/snapshot to a file, writing a temporary file
// first so that a failed download never leaves a plausible-looking one.
func backupCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, client := opsFlags("backup", getenv, stderr)
	out := fs.String("out", "", "file to write the backup to (required)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	c, err := client()
	if err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: give --out FILE")
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/snapshot", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, err = cluster.CheckBackup(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, checksum verified)\n", *out, n)
	return nil
}

// restoreCommand seeds an empty data directory from a backup. It takes
// --from FILE and otherwise the same flags as serve (data directory, node
// id, voters, Raft address); start the node with serve afterwards.
func restoreCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	from, rest := cutFlag(args, "from")
	if from == "" {
		fmt.Fprintln(stderr, "usage: doubledutch restore --from FILE [serve flags: --data-dir, --node-id, --voters, --raft-advertise ...]")
		return errUsage
	}
	cfg, err := parseServeArgs(rest, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ccfg, err := cfg.clusterConfig(newLogger(cfg, stderr), nil)
	if err != nil {
		return err
	}
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := cluster.Restore(ccfg, f)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %d locks (backup index %d) into %s; the log resumes after index %d with %d voter(s). Start the node with serve and the same flags.\n",
		info.Locks, info.BackupIndex, cfg.DataDir, info.StartIndex, len(info.Voters))
	return nil
}

// cutFlag removes --name VALUE or --name=VALUE from args.
func cutFlag(args []string, name string) (string, []string) {
	var val string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-"+name || a == "--"+name:
			if i+1 < len(args) {
				val = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"="):
			_, val, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return val, rest
}

// transferCommand asks the leader to hand leadership over, to the node
// named by the optional argument or else to the most up-to-date follower.
func transferCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, client := opsFlags("transfer-leader", getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if fs.NArg() > 1 {
		return errors.New("transfer-leader takes at most one node id")
	}
	c, err := client()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"target": fs.Arg(0)})
	resp, err := c.do(ctx, http.MethodPost, "/v1/cluster/leader", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Previous string `json:"previous_leader"`
		Leader   string `json:"leader_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "leadership moved from %s to %s\n", out.Previous, out.Leader)
	return nil
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return errUsage
}
