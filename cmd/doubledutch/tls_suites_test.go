package main

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster/tlsutil"
)

// The client API port speaks TLS 1.2 with AEAD suites only: a client that
// offers only CBC suites is refused, one offering GCM is served.
func TestAPIPortRefusesCBCSuites(t *testing.T) {
	dir := t.TempDir()
	if err := tlsutil.WriteBundle(dir, tlsutil.ParseNodes("node1"), tlsutil.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{TLSCert: filepath.Join(dir, "node1.crt"), TLSKey: filepath.Join(dir, "node1.key")}
	conf, err := cfg.apiTLS()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(suite uint16) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, cbc := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
		if dial(cbc) == nil {
			t.Errorf("the API port accepted %s", tls.CipherSuiteName(cbc))
		}
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Fatalf("the API port refused an AEAD suite: %v", err)
	}
}
