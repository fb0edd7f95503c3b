package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// /metrics: Prometheus text format from a registry of this Server's own
// (never the global default one: a process may run many servers, and
// tests do).
//
// No metric carries a lock name, owner, session token or request id as a
// label or value: lock names are unbounded in number and may be
// sensitive. Labels are route patterns, methods, status codes, outcome
// names, Raft states and node ids, all bounded. That is why /metrics needs
// no key, like Prometheus's usual scrape targets; put it behind the
// network policy that guards the Raft port if even node ids are private.

// metrics holds this Server's collectors.
type metrics struct {
	reg *prometheus.Registry

	lockOps     *prometheus.CounterVec   // by kind and result, as answered
	waitTime    prometheus.Histogram     // request to grant, acquires
	requestTime *prometheus.HistogramVec // by route, method and code
	abandoned   prometheus.Counter

	applied *appliedStats // counted from the applied log (metrics_applied.go)
	cancel  func()
}

// Buckets for request and wait times: 1 ms to about a minute.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2.5, 13)

func newMetrics(s *Server, ops Ops) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lockOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doubledutch_lock_operations_total",
			Help: "Lock requests answered by this node, by kind (acquire, release, refresh) and result (ok or the error code).",
		}, []string{"kind", "result"}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "doubledutch_lock_wait_seconds",
			Help:    "Time from an acquire request's arrival to its grant, waiting included.",
			Buckets: latencyBuckets,
		}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "doubledutch_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "code"}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "doubledutch_abandoned_grants_total",
			Help: "Grants released again because their client went away before hearing of them.",
		}),
		cancel: func() {},
	}
	m.reg.MustRegister(m.lockOps, m.waitTime, m.requestTime, m.abandoned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "doubledutch_waiters",
		Help: "Requests waiting for a lock at this node.",
	}, func() float64 { return float64(s.waitersTotal()) }))
	m.reg.MustRegister(&raftCollector{s: s, ops: ops})
	if ops != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "doubledutch_locks_held",
			Help: "Locks held in this node's applied state.",
		}, func() float64 { return float64(ops.LockCount()) }))
		m.applied = newAppliedStats(m.reg)
		ops.OnApplied(m.applied.observe)
		m.cancel = func() { ops.OnApplied(nil) }
	}
	return m
}

func (m *metrics) close() { m.cancel() }

// Registry is this Server's metrics registry. cmd adds Raft's own metrics
// (bridged from go-metrics) to it; nothing else should need it.
func (s *Server) Registry() *prometheus.Registry { return s.opsp.metrics.reg }

// serveMetrics serves GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	promhttp.HandlerFor(s.opsp.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// lockKinds names the lock operation each mutating route performs.
var lockKinds = map[string]string{
	"GET /getlock":                 "acquire",
	"DELETE /releaselock":          "release",
	"POST /v1/locks/:name":         "acquire",
	"DELETE /v1/locks/:name":       "release",
	"POST /v1/locks/:name/refresh": "refresh",
}

// countLockOp wraps a lock route's handler to count its answers and, for
// grants, the time waited.
func (s *Server) countLockOp(rt route) handlerFunc {
	kind, known := lockKinds[rt.method+" "+rt.path]
	if !known {
		return rt.handle
	}
	next := rt.handle
	var ok lazy[prometheus.Counter] // the usual series, looked up once, not per request
	okSeries := func() prometheus.Counter { return s.opsp.metrics.lockOps.WithLabelValues(kind, "ok") }
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		start := time.Now()
		err := next(w, r, ps)
		if err != nil {
			_, code := classify(err)
			s.opsp.metrics.lockOps.WithLabelValues(kind, string(code)).Inc()
			return err
		}
		if kind == "acquire" {
			s.opsp.metrics.waitTime.Observe(time.Since(start).Seconds())
		}
		ok.get(okSeries).Inc()
		return nil
	}
}

// timeRoute wraps a route to observe its latency by pattern and code.
func (s *Server) timeRoute(rt route, next httprouter.Handle) httprouter.Handle {
	hist := s.opsp.metrics.requestTime
	// The usual answer's series is looked up once, not per request.
	var ok lazy[prometheus.Observer]
	okSeries := func() prometheus.Observer {
		return hist.WithLabelValues(rt.path, rt.method, strconv.Itoa(http.StatusOK))
	}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		next(w, r, ps)
		code := http.StatusOK
		if rec, isRec := w.(*recorder); isRec && rec.status != 0 {
			code = rec.status
		}
		var obs prometheus.Observer
		if code == http.StatusOK {
			obs = ok.get(okSeries)
		} else {
			obs = hist.WithLabelValues(rt.path, rt.method, strconv.Itoa(code))
		}
		obs.Observe(time.Since(start).Seconds())
	}
}

// noteAbandoned counts a grant released because its client went away.
func (s *Server) noteAbandoned() { s.opsp.metrics.abandoned.Inc() }

// lazy holds a metric series made on first use (so /metrics shows no
// series before its first event, as with WithLabelValues per request).
type lazy[T any] struct {
	once sync.Once
	v    T
}

func (l *lazy[T]) get(make func() T) T {
	l.once.Do(func() { l.v = make() })
	return l.v
}
