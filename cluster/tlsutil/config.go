package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// CipherSuites are the TLS 1.2 suites DoubleDutch accepts on its client
// and Raft ports: AEAD only (AES-GCM and ChaCha20-Poly1305, with ECDHE for
// forward secrecy); the CBC-mode suites Go still enables by default are
// left out. TLS 1.3 suites are AEAD by definition and not configurable.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ServerConfig builds a server-side TLS configuration from PEM files. If
// caFile is not empty the server requires every client to present a
// certificate signed by that CA (mutual TLS); otherwise any client may
// connect. See ServerConfigPEM.
func ServerConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	certPEM, keyPEM, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if certPEM == nil {
		return nil, errors.New("tlsutil: a server needs a certificate and key file")
	}
	caPEM, err := readOptional(caFile)
	if err != nil {
		return nil, err
	}
	return ServerConfigPEM(certPEM, keyPEM, caPEM)
}

// ServerConfigPEM is ServerConfig for PEM bytes. A nil caPEM turns client
// authentication off; a non-nil but empty or unparsable caPEM is an error,
// so that a missing CA file never silently downgrades mutual TLS.
func ServerConfigPEM(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load server key pair: %w", err)
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: CipherSuites(),
		Certificates: []tls.Certificate{cert},
	}
	if caPEM != nil {
		pool, err := certPool(caPEM)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// ClientConfig builds a client-side TLS configuration from PEM files. Servers
// are verified against caFile, or against the system roots if caFile is
// empty. The client certificate is presented when certFile and keyFile are
// given (both or neither). The caller, or tls.Dial, sets ServerName.
func ClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	certPEM, keyPEM, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := readOptional(caFile)
	if err != nil {
		return nil, err
	}
	return ClientConfigPEM(certPEM, keyPEM, caPEM)
}

// ClientConfigPEM is ClientConfig for PEM bytes: nil certPEM and keyPEM mean
// no client certificate, nil caPEM means the system roots.
func ClientConfigPEM(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites()}
	if certPEM != nil || keyPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: load client key pair: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if caPEM != nil {
		pool, err := certPool(caPEM)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// certPool parses every certificate in caPEM and insists on at least one.
func certPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("tlsutil: no CA certificate found in the CA PEM data")
	}
	return pool, nil
}

// readPair reads a certificate and key file; both empty yields nil, nil.
func readPair(certFile, keyFile string) (certPEM, keyPEM []byte, err error) {
	if (certFile == "") != (keyFile == "") {
		return nil, nil, errors.New("tlsutil: give both a certificate file and a key file, or neither")
	}
	if certFile == "" {
		return nil, nil, nil
	}
	if certPEM, err = os.ReadFile(certFile); err != nil {
		return nil, nil, fmt.Errorf("tlsutil: %w", err)
	}
	if keyPEM, err = os.ReadFile(keyFile); err != nil {
		return nil, nil, fmt.Errorf("tlsutil: %w", err)
	}
	return certPEM, keyPEM, nil
}

// readOptional reads name, or returns nil when name is empty.
func readOptional(name string) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if data == nil {
		data = []byte{} // an empty file must still count as "given"
	}
	return data, nil
}
