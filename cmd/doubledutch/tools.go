package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/cluster/tlsutil"
)

// devRaftTimeouts are quicker than the serve defaults: on loopback a
// failover then takes well under a second.
func devRaftTimeouts() (heartbeat, election, lease time.Duration) {
	return cluster.DefaultHeartbeatTimeout, cluster.DefaultElectionTimeout, cluster.DefaultLeaderLeaseTimeout
}

// certsCommand writes a CA and per-node certificates for the API and for
// Raft's mutual TLS.
func certsCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "certs", "directory to write ca.crt, ca.key and NODE.crt/NODE.key into")
	nodes := fs.String("nodes", "node1,node2,node3", "comma-separated node names; each certificate also names localhost, 127.0.0.1 and ::1")
	days := fs.Int("days", 365, "validity in days")
	force := fs.Bool("force", false, "overwrite existing files")
	reuse := fs.Bool("reuse-ca", false, "sign new node certificates with the CA already in --out")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	specs := tlsutil.ParseNodes(*nodes)
	if len(specs) == 0 || *days <= 0 {
		return errors.New("certs: need at least one node name and a positive --days")
	}
	opts := tlsutil.BundleOptions{ValidFor: time.Duration(*days) * 24 * time.Hour, Force: *force, ReuseCA: *reuse}
	if err := tlsutil.WriteBundle(*out, specs, opts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/%s and certificates for %s (keys are private: never commit them)\n",
		*out, tlsutil.CACertFile, strings.Join(names(specs), ", "))
	return nil
}

func names(specs []tlsutil.NodeSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// healthCommand asks a node's /v1/health (or --endpoint: /readyz,
// /healthz) and fails unless it answers 200: the container HEALTHCHECK,
// which cannot rely on curl in a scratch image.
func healthCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv(envName("api-url"))
	if def == "" {
		def = "https://127.0.0.1:8000"
	}
	base := fs.String("url", def, "the node's API URL (default $DOUBLEDUTCH_API_URL)")
	ca := fs.String("ca", getenv(envName("health-ca")), "CA to verify the node's certificate (default $DOUBLEDUTCH_HEALTH_CA)")
	insecure := fs.Bool("insecure", false, "do not verify the node's certificate (without --ca a loopback URL is never verified: it is this machine)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	endpoint := fs.String("endpoint", "/v1/health", "path to check: /v1/health (a leader is known), /readyz (ready to serve current state) or /healthz (the process serves)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	switch *endpoint {
	case "/v1/health", "/readyz", "/healthz":
	default:
		return fmt.Errorf("health: --endpoint must be /v1/health, /readyz or /healthz, not %q", *endpoint)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure || (*ca == "" && isLoopbackURL(*base))}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate in %s", *ca)
		}
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*base, "/")+*endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s", resp.Status)
	}
	return nil
}

// isLoopbackURL reports whether u names this machine by a loopback address
// or localhost: a health check of the process next door needs no
// certificate check to be safe.
func isLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
