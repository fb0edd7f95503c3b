package ddtest

import (
	"io"
	"net"
	"sync"
)

// Proxy is a TCP proxy in front of one node's API that can drop traffic
// the way a broken network does: a blackholed proxy keeps connections
// open and forwards nothing, so the client's requests run into its own
// timeouts instead of failing fast.
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	blackhole bool
	dropNext  bool // drop every reply byte of the next connection that answers
	dropped   int  // replies dropped by dropNext
	conns     map[*proxyConn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

type proxyConn struct {
	down, up net.Conn
	dropping bool // guarded by Proxy.mu: this connection's replies are dropped
	tainted  bool // guarded by Proxy.mu: bytes were dropped; close on restore
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[*proxyConn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole starts (on) or stops dropping every byte in both directions,
// on open and new connections. Stopping closes the connections that lost
// bytes (their HTTP stream is out of step), as a reset would.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = on
	if on {
		return
	}
	for c := range p.conns {
		if c.tainted {
			c.down.Close()
			c.up.Close()
		}
	}
}

// DropNextReply arms the proxy to drop the reply of the next connection
// that answers anything (the request has then reached the node).
func (p *Proxy) DropNextReply() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropNext = true
}

// DroppedReplies counts the replies dropped by DropNextReply.
func (p *Proxy) DroppedReplies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.down.Close()
		c.up.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close() // the node is down: the client sees a reset
			continue
		}
		c := &proxyConn{down: down, up: up}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, down, up, false)
		go p.pipe(c, up, down, true)
	}
}

// pipe copies src to dst, dropping what the proxy's state says to drop.
func (p *Proxy) pipe(c *proxyConn, src, dst net.Conn, reply bool) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.drop(c, reply) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// drop decides the fate of bytes read on c.
func (p *Proxy) drop(c *proxyConn, reply bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reply && !c.dropping && p.dropNext {
		p.dropNext = false
		c.dropping = true
		p.dropped++
	}
	if p.blackhole || (reply && c.dropping) {
		c.tainted = true
		return true
	}
	return false
}
