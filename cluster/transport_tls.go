package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// defaultTLSHandshakeTimeout bounds how long an inbound peer may take to
// finish its TLS handshake before the connection is dropped, so that a
// silent or hostile client cannot pin a connection handler forever.
const defaultTLSHandshakeTimeout = 10 * time.Second

// TLSStreamLayer is a raft.StreamLayer that carries raft RPCs over mutual
// TLS: every inbound peer must present a certificate the server config
// trusts, and every outbound dial verifies the peer's certificate against
// the address it dials. Use it with raft.NewNetworkTransport.
type TLSStreamLayer struct {
	listener         net.Listener
	advertise        net.Addr
	serverConf       *tls.Config
	clientConf       *tls.Config
	handshakeTimeout time.Duration
}

var _ raft.StreamLayer = (*TLSStreamLayer)(nil)

// NewTLSStreamLayer listens on bind (for example "0.0.0.0:8300" or
// "127.0.0.1:0") and returns a stream layer that accepts TLS connections
// with serverConf and dials peers with clientConf.
//
// Addr reports advertise when it is not nil, otherwise the listener's real
// address; raft gives that address to peers, so an unspecified address
// (0.0.0.0 or ::) is refused as unreachable.
//
// serverConf must require and verify client certificates and clientConf
// must carry a certificate: raft RPCs can rewrite the replicated log, so an
// unauthenticated peer is never acceptable. Both configs are cloned; later
// changes by the caller have no effect.
func NewTLSStreamLayer(bind string, advertise net.Addr, serverConf, clientConf *tls.Config) (*TLSStreamLayer, error) {
	if err := checkTLSConfigs(serverConf, clientConf); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft listen on %s: %w", bind, err)
	}
	l, err := NewTLSStreamLayerOn(ln, advertise, serverConf, clientConf)
	if err != nil {
		ln.Close()
	}
	return l, err
}

// NewTLSStreamLayerOn is NewTLSStreamLayer over a listener the caller has
// already bound, so it can learn the port before any node starts.
func NewTLSStreamLayerOn(ln net.Listener, advertise net.Addr, serverConf, clientConf *tls.Config) (*TLSStreamLayer, error) {
	if err := checkTLSConfigs(serverConf, clientConf); err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if tcp, ok := advertise.(*net.TCPAddr); ok && (tcp.IP == nil || tcp.IP.IsUnspecified()) {
		return nil, fmt.Errorf("cluster: raft address %s is not reachable by peers; give an advertise address", advertise)
	}
	return &TLSStreamLayer{
		listener:         ln,
		advertise:        advertise,
		serverConf:       serverConf.Clone(),
		clientConf:       clientConf.Clone(),
		handshakeTimeout: defaultTLSHandshakeTimeout,
	}, nil
}

func checkTLSConfigs(serverConf, clientConf *tls.Config) error {
	if serverConf == nil || clientConf == nil {
		return errors.New("cluster: TLS stream layer needs a server and a client TLS config")
	}
	if serverConf.ClientAuth != tls.RequireAndVerifyClientCert {
		return errors.New("cluster: raft TLS server config must require and verify client certificates (give it a CA)")
	}
	if len(serverConf.Certificates) == 0 && serverConf.GetCertificate == nil {
		return errors.New("cluster: raft TLS server config has no certificate")
	}
	if len(clientConf.Certificates) == 0 && clientConf.GetClientCertificate == nil {
		return errors.New("cluster: raft TLS client config has no certificate; peers would refuse every connection")
	}
	return nil
}

// Accept waits for the next inbound connection and wraps it in TLS without
// handshaking: raft's accept loop is a single goroutine, and a handshake
// here would let one slow peer stall every other. The handshake runs,
// bounded by a timeout, on the connection's first Read or Write, which
// raft does in the connection's own goroutine.
func (l *TLSStreamLayer) Accept() (net.Conn, error) {
	c, err := l.listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lazyTLSConn{Conn: tls.Server(c, l.serverConf), timeout: l.handshakeTimeout}, nil
}

// Close stops listening. Connections already accepted stay open; raft
// closes those itself.
func (l *TLSStreamLayer) Close() error { return l.listener.Close() }

// Addr is the address peers should dial: the advertise address if one was
// given, else the listener's.
func (l *TLSStreamLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer and completes the TLS handshake within timeout
// (zero means no limit). When the client config names no server, the host
// part of address becomes the ServerName, so the peer's certificate must
// list that IP or DNS name; tls.Dial would infer it too, but gets bracketed
// IPv6 literals wrong.
func (l *TLSStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conf := l.clientConf
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, fmt.Errorf("cluster: raft peer address %q: %w", address, err)
		}
		conf = conf.Clone()
		conf.ServerName = host
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout, LocalAddr: dialSource(l.listener.Addr())}, "tcp", string(address), conf)
}

// lazyTLSConn is an accepted server-side TLS connection whose handshake
// happens on first use under a deadline. crypto/tls would handshake lazily
// by itself, but without any time limit.
type lazyTLSConn struct {
	*tls.Conn
	timeout time.Duration
	done    atomic.Bool
}

// handshake completes the TLS handshake once; later calls are free. A
// handshake that times out closes the underlying connection (crypto/tls
// does so when the context expires).
func (c *lazyTLSConn) handshake() error {
	if c.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("cluster: raft TLS handshake with %s: %w", c.Conn.RemoteAddr(), err)
	}
	c.done.Store(true)
	return nil
}

// Read handshakes first, so that an unauthenticated peer never gets a byte
// of its request read.
func (c *lazyTLSConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

// Write handshakes first, for the same reason as Read.
func (c *lazyTLSConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
