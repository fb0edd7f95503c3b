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
	return net.DialTimeout("tcp", string(address), timeout)
}
