package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testValidity = time.Hour

// pki is a CA and two node certificates, as PEM.
type pki struct {
	caCert, caKey []byte
	nodes         map[string][2][]byte // name -> cert, key
}

func newPKI(t *testing.T, names ...string) pki {
	t.Helper()
	caCert, caKey, err := GenerateCA("test CA", testValidity)
	if err != nil {
		t.Fatal(err)
	}
	p := pki{caCert: caCert, caKey: caKey, nodes: map[string][2][]byte{}}
	for _, n := range names {
		cert, key, err := GenerateNodeCert(caCert, caKey, n, DefaultHosts(n), testValidity)
		if err != nil {
			t.Fatal(err)
		}
		p.nodes[n] = [2][]byte{cert, key}
	}
	return p
}

// handshake runs one TLS server connection on 127.0.0.1:0 and one client
// dial against it, exchanging a byte each way. It returns the server's and
// the client's error; the server's is authoritative for client-certificate
// checks, because under TLS 1.3 the client learns of a rejection only on
// its first read.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err != nil {
			done <- err
			return
		}
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write(buf)
		done <- err
	}()

	clientErr = func() error {
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte{42}); err != nil {
			return err
		}
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if buf[0] != 42 {
			return errors.New("echo mismatch")
		}
		return nil
	}()
	select {
	case serverErr = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("server side did not finish")
	}
	return serverErr, clientErr
}

func mustServer(t *testing.T, cert, key, ca []byte) *tls.Config {
	t.Helper()
	c, err := ServerConfigPEM(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustClient(t *testing.T, cert, key, ca []byte) *tls.Config {
	t.Helper()
	c, err := ClientConfigPEM(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMutualTLSFromBundleFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBundle(dir, ParseNodes("node1, node2"), BundleOptions{ValidFor: testValidity}); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	server, err := ServerConfig(f("node1.crt"), f("node1.key"), f(CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	client, err := ClientConfig(f("node2.crt"), f("node2.key"), f(CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS12 || server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("server config: min version %x, client auth %v", server.MinVersion, server.ClientAuth)
	}
	serverErr, clientErr := handshake(t, server, client)
	if serverErr != nil || clientErr != nil {
		t.Fatalf("mutual TLS failed: server %v, client %v", serverErr, clientErr)
	}
}

func TestClientFromOtherCARejected(t *testing.T) {
	good, rogue := newPKI(t, "node1"), newPKI(t, "intruder")
	server := mustServer(t, good.nodes["node1"][0], good.nodes["node1"][1], good.caCert)
	// The intruder trusts the real CA, so only the server's check can stop it.
	client := mustClient(t, rogue.nodes["intruder"][0], rogue.nodes["intruder"][1], good.caCert)
	serverErr, clientErr := handshake(t, server, client)
	t.Logf("server: %v; client: %v", serverErr, clientErr)
	if serverErr == nil || clientErr == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
}

func TestClientWithoutCertRejected(t *testing.T) {
	p := newPKI(t, "node1")
	server := mustServer(t, p.nodes["node1"][0], p.nodes["node1"][1], p.caCert)
	client := mustClient(t, nil, nil, p.caCert)
	serverErr, clientErr := handshake(t, server, client)
	t.Logf("server: %v; client: %v", serverErr, clientErr)
	if serverErr == nil || clientErr == nil {
		t.Fatal("a client without a certificate was accepted under mutual TLS")
	}
}

func TestServerFromOtherCARejected(t *testing.T) {
	good, rogue := newPKI(t, "node1"), newPKI(t, "impostor")
	server := mustServer(t, rogue.nodes["impostor"][0], rogue.nodes["impostor"][1], nil)
	client := mustClient(t, good.nodes["node1"][0], good.nodes["node1"][1], good.caCert)
	_, clientErr := handshake(t, server, client)
	var unknown x509.UnknownAuthorityError
	if !errors.As(clientErr, &unknown) {
		t.Fatalf("client error = %v, want unknown authority", clientErr)
	}
}

func TestNodeCertSANsAndUsage(t *testing.T) {
	p := newPKI(t)
	certPEM, _, err := GenerateNodeCert(p.caCert, p.caKey, "n1", []string{"n1.example", "10.0.0.1", "::1"}, 10*testValidity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := ParseCertificatePEM(p.caCert)
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "n1.example" || len(cert.IPAddresses) != 2 {
		t.Fatalf("SANs: dns %v ip %v", cert.DNSNames, cert.IPAddresses)
	}
	if cert.NotAfter.After(ca.NotAfter) {
		t.Fatalf("leaf expires %v after its CA %v", cert.NotAfter, ca.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: "10.0.0.1", Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("verify for usage %v: %v", usage, err)
		}
	}
}

func TestGenerateNodeCertRejectsMismatchedCAKey(t *testing.T) {
	a, b := newPKI(t), newPKI(t)
	if _, _, err := GenerateNodeCert(a.caCert, b.caKey, "n", nil, testValidity); err == nil {
		t.Fatal("signed with a key that does not belong to the CA certificate")
	}
}

func TestWriteBundleRefusesToOverwriteCAKey(t *testing.T) {
	dir := t.TempDir()
	opts := BundleOptions{ValidFor: testValidity}
	if err := WriteBundle(dir, ParseNodes("node1"), opts); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CAKeyFile, "node1.key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	caKey, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))

	// A second run for a different node still must not replace the CA key.
	err := WriteBundle(dir, ParseNodes("node2"), opts)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second WriteBundle: err = %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node2.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused WriteBundle still wrote node2.crt (stat err %v)", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); string(after) != string(caKey) {
		t.Fatal("CA key changed")
	}

	// Reusing the CA adds node2 and leaves the CA key alone.
	opts.ReuseCA = true
	if err := WriteBundle(dir, ParseNodes("node2"), opts); err != nil {
		t.Fatalf("ReuseCA: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); string(after) != string(caKey) {
		t.Fatal("CA key changed under ReuseCA")
	}

	// Force replaces it.
	if err := WriteBundle(dir, ParseNodes("node1"), BundleOptions{ValidFor: testValidity, Force: true}); err != nil {
		t.Fatalf("Force: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); string(after) == string(caKey) {
		t.Fatal("Force did not replace the CA key")
	}
	if st, _ := os.Stat(filepath.Join(dir, CAKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("forced CA key has mode %v", st.Mode().Perm())
	}
}

func TestWriteBundleRejectsBadNames(t *testing.T) {
	for _, list := range []string{"", "ca", "../x", "a,a", "a/b"} {
		if err := WriteBundle(t.TempDir(), ParseNodes(list), BundleOptions{}); err == nil {
			t.Errorf("node list %q accepted", list)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	p := newPKI(t, "n")
	if _, err := ServerConfigPEM(p.nodes["n"][0], p.nodes["n"][1], []byte{}); err == nil {
		t.Error("an empty CA was accepted; mutual TLS would be silently off")
	}
	if _, err := ClientConfig("cert-only.crt", "", ""); err == nil {
		t.Error("a certificate file without a key file was accepted")
	}
	if _, err := ServerConfig("", "", ""); err == nil {
		t.Error("a server without a certificate was accepted")
	}
}

// TLS 1.2 is limited to AEAD suites on both sides: a peer that offers only
// CBC suites is refused, one that offers GCM or ChaCha20-Poly1305 is not.
func TestTLS12AcceptsOnlyAEADSuites(t *testing.T) {
	p := newPKI(t, "a", "b")
	server := mustServer(t, p.nodes["a"][0], p.nodes["a"][1], p.caCert)
	client := func(suites ...uint16) *tls.Config {
		c := mustClient(t, p.nodes["b"][0], p.nodes["b"][1], p.caCert)
		c.ServerName, c.MaxVersion, c.CipherSuites = "a", tls.VersionTLS12, suites
		return c
	}
	for _, cbc := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA} {
		if serr, cerr := handshake(t, server, client(cbc)); serr == nil || cerr == nil {
			t.Errorf("TLS 1.2 with %s accepted", tls.CipherSuiteName(cbc))
		}
	}
	// The generated certificates are ECDSA: each ECDSA AEAD suite works.
	for _, aead := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if serr, cerr := handshake(t, server, client(aead)); serr != nil || cerr != nil {
			t.Errorf("TLS 1.2 with %s: server %v, client %v", tls.CipherSuiteName(aead), serr, cerr)
		}
	}
	if serr, cerr := handshake(t, server, client(CipherSuites()...)); serr != nil || cerr != nil {
		t.Fatalf("TLS 1.2 with the AEAD suites: server %v, client %v", serr, cerr)
	}
	// The client side refuses a server that would pick CBC.
	cbcServer := mustServer(t, p.nodes["a"][0], p.nodes["a"][1], p.caCert)
	cbcServer.MaxVersion, cbcServer.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
	c := mustClient(t, p.nodes["b"][0], p.nodes["b"][1], p.caCert)
	c.ServerName = "a"
	if _, cerr := handshake(t, cbcServer, c); cerr == nil {
		t.Fatal("the client accepted a CBC suite")
	}
	for _, s := range CipherSuites() {
		if info := suiteInfo(s); info == nil || info.Insecure {
			t.Errorf("suite %x is not a secure suite", s)
		}
	}
}

func suiteInfo(id uint16) *tls.CipherSuite {
	for _, s := range tls.CipherSuites() {
		if s.ID == id {
			return s
		}
	}
	return nil
}
