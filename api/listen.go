package api

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"

	"golang.org/x/net/netutil"
)

// HTTPServer returns the http.Server to run s on, with the bounds a
// public endpoint needs: headers within HeaderTimeout and MaxHeaderBytes,
// idle connections closed after IdleTimeout. Bodies and answers are
// bounded per request by s itself (BodyTimeout, WriteTimeout), because a
// server-wide ReadTimeout or WriteTimeout would also cut requests that
// wait for a lock. errLog may be nil.
func (s *Server) HTTPServer(tlsCfg *tls.Config, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           s,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          errLog,
	}
}

// Listener caps the connections served at once at MaxConnections (when
// set). Wrap the plain TCP listener, before any TLS, so that a connection
// stuck in its handshake counts too.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.cfg.MaxConnections <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, s.cfg.MaxConnections)
}
