// Package tlsutil owns DoubleDutch's X.509 material: it generates a private
// certificate authority and node certificates, writes them to disk as a
// bundle (what `doubledutch certs` produces), and turns them into crypto/tls
// configurations for the raft transport (mutual TLS between nodes) and the
// HTTPS API.
//
// All keys are ECDSA P-256: small, fast enough to generate in every test, and
// accepted by every TLS stack a DoubleDutch client is likely to use.
package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// clockSkew backdates NotBefore so that a certificate generated on one
// machine is already valid on a peer whose clock runs a little behind.
const clockSkew = 5 * time.Minute

// GenerateCA creates a self-signed ECDSA P-256 certificate authority valid
// for validFor from now. It returns the certificate and its PKCS#8 private
// key, both PEM-encoded. The CA can sign leaf certificates only
// (path length zero), which is all a cluster needs.
func GenerateCA(commonName string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if validFor <= 0 {
		return nil, nil, errors.New("tlsutil: CA validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: create CA certificate: %w", err)
	}
	return encodePair(der, key)
}

// GenerateNodeCert issues a leaf certificate signed by the given CA. The leaf
// is usable both as a TLS server and as a TLS client, because a raft node
// accepts connections from its peers and dials them. Each entry of hosts
// becomes a subject alternative name: IP literals go into IPAddresses,
// anything else into DNSNames (Go ignores the common name when verifying a
// host, so a certificate that must be dialled needs at least one host).
// The leaf never outlives its CA.
func GenerateNodeCert(caCertPEM, caKeyPEM []byte, commonName string, hosts []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if validFor <= 0 {
		return nil, nil, errors.New("tlsutil: certificate validity must be positive")
	}
	caCert, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: generate node key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(validFor)
	if notAfter.After(caCert.NotAfter) {
		// A leaf that outlives its issuer stops verifying when the CA
		// expires anyway; saying so in the certificate avoids surprises.
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: sign node certificate: %w", err)
	}
	return encodePair(der, key)
}

// ParseCertificatePEM returns the first CERTIFICATE block of certPEM, parsed.
func ParseCertificatePEM(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("tlsutil: no CERTIFICATE block in PEM data")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tlsutil: parse certificate: %w", err)
			}
			return cert, nil
		}
	}
}

// parseCA decodes a CA certificate and its key and checks that they belong
// together: signing with a mismatched key would produce leaves that no peer
// can verify, and the error would only surface at the first handshake.
func parseCA(caCertPEM, caKeyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	cert, err := ParseCertificatePEM(caCertPEM)
	if err != nil {
		return nil, nil, err
	}
	if !cert.IsCA {
		return nil, nil, errors.New("tlsutil: the CA certificate is not a certificate authority")
	}
	key, err := parsePrivateKeyPEM(caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("tlsutil: the CA key does not match the CA certificate")
	}
	return cert, key, nil
}

// parsePrivateKeyPEM accepts PKCS#8 ("PRIVATE KEY", what this package
// writes) and SEC 1 ("EC PRIVATE KEY", what `openssl ecparam` writes).
func parsePrivateKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("tlsutil: no private key block in PEM data")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tlsutil: parse private key: %w", err)
			}
			signer, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("tlsutil: private key of type %T cannot sign", k)
			}
			return signer, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tlsutil: parse EC private key: %w", err)
			}
			return k, nil
		}
	}
}

// encodePair PEM-encodes a DER certificate and its key.
func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: marshal private key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// randomSerial draws a 128-bit serial number; RFC 5280 asks for unique
// serials per CA, and randomness gives that without keeping state.
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tlsutil: draw serial number: %w", err)
	}
	return serial, nil
}
