package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// CutMode says how a cut link treats new connections. Existing
// connections on the link are closed either way, as a firewall that
// resets them would.
type CutMode int

const (
	// Refuse closes new connections at once: the dialer sees an error.
	Refuse CutMode = iota
	// Blackhole accepts new connections and never forwards a byte: the
	// dialer's RPCs run into their timeouts.
	Blackhole
)

func (m CutMode) String() string {
	if m == Blackhole {
		return "blackhole"
	}
	return "refuse"
}

// link is the directed path of connections that node from opens to node to.
type link struct{ from, to int }

// Network is the fault-injecting layer between the nodes' Raft
// transports: one proxy per node, in front of its real Raft port. Node i
// dials from its own IP, so a proxy tells the source node of every
// connection from the remote address.
type Network struct {
	mu      sync.Mutex
	cut     map[link]CutMode
	conns   map[*proxyConn]struct{}
	lns     []net.Listener
	srcIdx  map[string]int // source IP -> node index
	targets []string       // node index -> real Raft address
	closed  bool
	wg      sync.WaitGroup
}

type proxyConn struct {
	l          link
	blackholed bool // guarded by Network.mu

	mu       sync.Mutex
	closed   bool
	down, up net.Conn // from the dialer; to the target (nil until dialled)
}

func (pc *proxyConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return
	}
	pc.closed = true
	pc.down.Close()
	if pc.up != nil {
		pc.up.Close()
	}
}

// setUp attaches the target connection, or closes it when the proxy
// connection was closed (its link cut) while dialling.
func (pc *proxyConn) setUp(up net.Conn) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		up.Close()
		return false
	}
	pc.up = up
	return true
}

// NewNetwork starts a proxy for every node: proxyAddrs[i] listens in
// front of targets[i]; srcIPs[i] is the IP node i dials from.
func NewNetwork(proxyAddrs, targets, srcIPs []string) (*Network, error) {
	n := &Network{cut: map[link]CutMode{}, conns: map[*proxyConn]struct{}{},
		srcIdx: map[string]int{}, targets: targets}
	for i, ip := range srcIPs {
		n.srcIdx[ip] = i
	}
	for i, addr := range proxyAddrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("proxy for node %d: %w", i, err)
		}
		n.lns = append(n.lns, ln)
	}
	for i, ln := range n.lns {
		n.wg.Add(1)
		go n.accept(i, ln)
	}
	return n, nil
}

// Addr is the address of node i's proxy (its advertised Raft address).
func (n *Network) Addr(i int) string { return n.lns[i].Addr().String() }

func (n *Network) accept(to int, ln net.Listener) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		from := -1
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			if i, known := n.srcIdx[a.IP.String()]; known {
				from = i
			}
		}
		n.wg.Add(1)
		go n.serve(link{from, to}, c)
	}
}

// serve forwards one connection, unless its link is cut.
func (n *Network) serve(l link, down net.Conn) {
	defer n.wg.Done()
	pc := &proxyConn{l: l, down: down}
	mode, isCut := n.register(pc)
	if isCut {
		if mode == Refuse {
			pc.close()
			n.unregister(pc)
		}
		// A blackholed connection stays open and silent until its link
		// heals or the network closes.
		return
	}
	up, err := net.DialTimeout("tcp", n.targets[l.to], 2*time.Second)
	if err != nil {
		pc.close()
		n.unregister(pc)
		return
	}
	if !pc.setUp(up) {
		n.unregister(pc)
		return
	}
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pump(up, down)
	go pump(down, up)
	<-done
	pc.close()
	<-done
	n.unregister(pc)
}

// register adds pc and reports whether its link is cut. A cut link's
// blackholed connection is registered so that healing closes it.
func (n *Network) register(pc *proxyConn) (CutMode, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return Refuse, true
	}
	mode, isCut := n.cut[pc.l]
	pc.blackholed = isCut && mode == Blackhole
	if !isCut || pc.blackholed {
		n.conns[pc] = struct{}{}
	}
	return mode, isCut
}

func (n *Network) unregister(pc *proxyConn) {
	n.mu.Lock()
	delete(n.conns, pc)
	n.mu.Unlock()
}

// Cut stops traffic from node from to node to (connections from opens),
// closing the link's open connections.
func (n *Network) Cut(from, to int, mode CutMode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = mode
	for pc := range n.conns {
		if pc.l == (link{from, to}) && !pc.blackholed {
			pc.close()
		}
	}
}

// Isolate cuts node i off from every other node, both ways.
func (n *Network) Isolate(i int, mode CutMode) {
	for j := range n.lns {
		if j != i {
			n.CutPair(i, j, mode)
		}
	}
}

// CutPair cuts both directions between i and j.
func (n *Network) CutPair(i, j int, mode CutMode) {
	n.Cut(i, j, mode)
	n.Cut(j, i, mode)
}

// HealAll restores every link and drops blackholed connections, whose
// dialers have long given up on them.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]CutMode{}
	for pc := range n.conns {
		if pc.blackholed {
			pc.close()
			delete(n.conns, pc)
		}
	}
}

// Cuts describes the cut links, for the fault log.
func (n *Network) Cuts() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := ""
	for l, m := range n.cut {
		s += fmt.Sprintf(" %d->%d(%s)", l.from+1, l.to+1, m)
	}
	return s
}

// Close stops every proxy and connection.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	for pc := range n.conns {
		pc.close()
	}
	n.mu.Unlock()
	var errs []error
	for _, ln := range n.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	n.wg.Wait()
	return errors.Join(errs...)
}
