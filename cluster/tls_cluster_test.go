package cluster

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster/tlsutil"
	"github.com/doubledutch/doubledutch/fsm"
)

func TestClusterOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := tlsutil.WriteBundle(dir, tlsutil.ParseNodes("n1,n2,n3"), tlsutil.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, tlsutil.CACertFile)
	tc := newTestCluster(t, 3, func(c *Config) {
		crt, key := filepath.Join(dir, c.NodeID+".crt"), filepath.Join(dir, c.NodeID+".key")
		var err error
		if c.RaftServerTLS, err = tlsutil.ServerConfig(crt, key, ca); err != nil {
			t.Fatal(err)
		}
		if c.RaftClientTLS, err = tlsutil.ClientConfig(crt, key, ca); err != nil {
			t.Fatal(err)
		}
	})
	r := tc.acquire("secure", time.Minute)
	if r.Outcome != fsm.Granted {
		t.Fatalf("acquire over TLS: %+v", r)
	}
	tc.onEveryNode("secure held", holds("secure", r.Lock.Fence))
}
