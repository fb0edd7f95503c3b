package cluster

import (
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStreamLayer runs Raft over an already-bound TCP listener, so a caller
// (a test, a socket-activated service) can learn the port before any node
// starts and hand every node the same voter list.
type tcpStreamLayer struct {
	net.Listener
	advertise net.Addr
}

func (l *tcpStreamLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}

// Dial connects to a peer's Raft transport.
func (l *tcpStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: dialSource(l.Listener.Addr())}
	return d.Dial("tcp", string(address))
}

// dialSource makes outgoing Raft connections leave from the IP the
// transport is bound to, when it is bound to a specific one: peers (and
// firewalls, and the chaos tests' fault-injecting proxies) then see each
// node's traffic come from that node's own address.
func dialSource(bound net.Addr) net.Addr {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		return nil
	}
	return &net.TCPAddr{IP: tcp.IP}
}
