package api

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/net/netutil"
)

// HTTPServer returns the http.Server to run s on, with the bounds a
// public endpoint needs: headers within HeaderTimeout and MaxHeaderBytes,
// idle connections closed after IdleTimeout. Bodies and answers are
// bounded per request by s itself (BodyTimeout, WriteTimeout), because a
// server-wide ReadTimeout or WriteTimeout would also cut requests that
// wait for a lock. errLog may be nil. Listener's connection cap sheds idle
// connections of the server returned here when it is reached.
func (s *Server) HTTPServer(tlsCfg *tls.Config, errLog *log.Logger) *http.Server {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          errLog,
	}
	s.httpSrv.Store(srv)
	return srv
}

// Listener caps the connections served at once at MaxConnections (when
// set). Wrap the plain TCP listener, before any TLS, so that a connection
// stuck in its handshake counts too. At the cap, kept-alive idle
// connections would hold every slot for IdleTimeout (a client needs no key
// to open them), so the server stops keeping connections alive, which
// closes the idle ones, until three quarters of the slots are free again.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.cfg.MaxConnections <= 0 {
		return ln
	}
	pl := &pressureListener{Listener: ln, limit: int64(s.cfg.MaxConnections), onFull: s.shedIdle}
	return netutil.LimitListener(pl, s.cfg.MaxConnections)
}

// shedIdle turns keep-alives off (closing idle connections) while the
// connection cap is reached, and back on after.
func (s *Server) shedIdle(full bool) {
	if srv := s.httpSrv.Load(); srv != nil {
		if full {
			s.log.Warn("connection cap reached: closing idle connections and keeping none alive", "cap", s.cfg.MaxConnections)
		}
		srv.SetKeepAlivesEnabled(!full)
	}
}

// pressureListener counts open connections and reports when the count
// reaches limit (full) and when it falls to three quarters of it again.
type pressureListener struct {
	net.Listener
	limit  int64
	onFull func(full bool)

	open    atomic.Int64
	mu      sync.Mutex // guards full
	full    bool
	applyMu sync.Mutex // serializes onFull calls
}

func (l *pressureListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.update(l.open.Add(1))
	return &slotConn{Conn: c, l: l}, nil
}

// update notes the pressure after the count became n. A change is applied
// on its own goroutine: turning keep-alives off closes idle connections,
// whose Close comes back here.
func (l *pressureListener) update(n int64) {
	l.mu.Lock()
	changed := false
	switch {
	case !l.full && n >= l.limit:
		l.full, changed = true, true
	case l.full && n <= l.limit*3/4:
		l.full, changed = false, true
	}
	l.mu.Unlock()
	if changed {
		go l.apply()
	}
}

// apply reports the current pressure; the last call applies the latest.
func (l *pressureListener) apply() {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	l.mu.Lock()
	full := l.full
	l.mu.Unlock()
	l.onFull(full)
}

// slotConn gives its slot back once, when closed.
type slotConn struct {
	net.Conn
	l    *pressureListener
	once sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.update(c.l.open.Add(-1)) })
	return err
}
