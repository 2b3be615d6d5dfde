package exporter

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/net/netutil"

	"github.com/probe-dev/probe/core/engine"
)

// Defaults of ServerOptions and Options.MaxProbes.
const (
	// DefaultMaxConns is the most connections a server holds when the file
	// descriptor limit leaves room for more.
	DefaultMaxConns          = 256
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	// newConnGrace is how long a new connection may take to send a whole
	// request before a server at its cap of connections may close it.
	newConnGrace = time.Second
)

// ServerOptions bound what clients may hold of a Server. Zero fields take
// their defaults.
type ServerOptions struct {
	// MaxConns is the most connections the server holds at once; more wait
	// in the listen queue. Once it holds MaxConns, it closes a connection
	// that serves no request, the one waiting longest, each time one more
	// comes: a keep-alive connection between requests, or a new one that
	// has not sent a whole request in a second. A client that parks
	// connections thus makes room for a scrape rather than keeping it out.
	// As with any server that closes idle keep-alive connections, a client
	// may have sent a request on one as it closed: an HTTP client sends a
	// GET again on a new connection.
	// Default DefaultMaxConns, or fewer where RLIMIT_NOFILE leaves room for
	// fewer beside the probes (see Options.MaxProbes).
	MaxConns int
	// ReadHeaderTimeout bounds how long a request's header may take to
	// arrive. Default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, counted from when it is
	// ready: a probe's answer has it after the probe, however long the
	// probe took. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ErrorLog receives the errors of connections (log's standard logger
	// when nil).
	ErrorLog *log.Logger
	// WebConfigFile is a web configuration file in exporter-toolkit's
	// format, the one blackbox_exporter and Prometheus read with
	// --web.config.file: TLS (client certificates too), basic auth with
	// bcrypt hashes, response headers. It is read again for every
	// request and TLS handshake, so changes need no restart. Default "":
	// plain HTTP, no authentication.
	WebConfigFile string
	// WebLogger receives exporter-toolkit's logs. Default: none.
	WebLogger *slog.Logger
	// EnableLifecycle lets POST /-/reload reload the file, as Prometheus's
	// --web.enable-lifecycle does. Default false: it answers 403, and only
	// SIGHUP reloads.
	EnableLifecycle bool
}

// limits returns how many connections a server holds and how many probes
// /probe runs at once, by default: as many as the file descriptors left
// under RLIMIT_NOFILE allow, counted as probe run counts them for its
// concurrency (engine.FDConcurrency: a few per attempt), half of them for
// probes and half for connections, which take one each; at most
// DefaultMaxConns of either.
func limits() (conns, probes int) {
	n, ok := engine.FDConcurrency()
	if !ok {
		return DefaultMaxConns, DefaultMaxConns
	}
	conns = min(DefaultMaxConns, max(2, 2*n))
	return conns, max(1, min(conns, n/2))
}

// Server serves an exporter's handler over HTTP within ServerOptions'
// bounds.
type Server struct {
	srv       *http.Server
	conns     *connCap
	webConfig string
	webLog    *slog.Logger
}

// NewServer returns a server of e's handler. An exporter has at most one:
// its /metrics carry the server's connections.
func (e *Exporter) NewServer(opts ServerOptions) *Server {
	if opts.MaxConns <= 0 {
		opts.MaxConns, _ = limits()
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	c := &connCap{max: opts.MaxConns, grace: newConnGrace, conns: map[net.Conn]*connInfo{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_exporter_connections",
			Help: "Connections the server holds, of at most probe_exporter_connections_max."}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_exporter_connections_closed_total",
			Help: "Connections closed without serving a request to make room for another, the server holding its most."}),
	}
	limit := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_exporter_connections_max",
		Help: "The most connections the server holds at once."})
	limit.Set(float64(opts.MaxConns))
	e.registry.MustRegister(c.open, c.closed, limit)
	if opts.WebLogger == nil {
		opts.WebLogger = slog.New(slog.DiscardHandler)
	}
	return &Server{conns: c, webConfig: opts.WebConfigFile, webLog: opts.WebLogger, srv: &http.Server{
		Handler:           answerDeadline(lifecycle(e.Handler(), opts.EnableLifecycle), opts.WriteTimeout),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		// Reset as each request is read, for what the server writes
		// itself; answerDeadline extends it for an answer that took long.
		WriteTimeout: opts.WriteTimeout,
		ConnState:    c.track,
		ErrorLog:     opts.ErrorLog,
	}}
}

// Serve accepts connections on ln, at most MaxConns at once, until
// Shutdown; it returns http.ErrServerClosed then. With a WebConfigFile,
// exporter-toolkit serves them: TLS and authentication as the file says.
func (s *Server) Serve(ln net.Listener) error {
	ln = netutil.LimitListener(ln, s.conns.max)
	if s.webConfig == "" {
		return s.srv.Serve(ln)
	}
	return web.Serve(ln, s.srv, &web.FlagConfig{WebConfigFile: &s.webConfig}, s.webLog)
}

// ValidateWebConfig checks a web configuration file (ServerOptions.
// WebConfigFile): its YAML, its users' bcrypt hashes, and that its
// certificates and keys load. tls says whether it serves HTTPS.
func ValidateWebConfig(path string) (tls bool, err error) {
	if err := web.Validate(path); err != nil {
		return false, fmt.Errorf("web config: %w", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("web config: %w", err)
	}
	var c web.Config
	if err := yaml.Unmarshal(src, &c); err != nil {
		return false, fmt.Errorf("web config %s: %w", path, err)
	}
	return c.TLSConfig.IsEnabled(), nil
}

// lifecycle answers POST /-/reload with 403 unless enabled, as Prometheus
// does without --web.enable-lifecycle.
func lifecycle(h http.Handler, enabled bool) http.Handler {
	if enabled {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/reload" {
			http.Error(w, "Lifecycle API is not enabled (probe serve --web.enable-lifecycle).", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Shutdown stops accepting connections and waits for the requests being
// served, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.stop()
	return s.srv.Shutdown(ctx)
}

// answerDeadline gives every answer of h d to be written, from its first
// byte: the server's WriteTimeout runs from the request, and a probe may
// take longer than that before its answer is ready.
func answerDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, d: d}, r)
	})
}

// deadlineWriter sets the write deadline of its connection when its answer
// starts.
type deadlineWriter struct {
	http.ResponseWriter
	d       time.Duration
	started bool
}

func (w *deadlineWriter) start() {
	if !w.started {
		w.started = true
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.d))
	}
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.start()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connCap tracks a server's connections (http.Server.ConnState) and, while
// the server holds max of them, closes one that serves no request each
// time another comes, the one waiting longest.
type connCap struct {
	max    int
	grace  time.Duration // a new connection's time to send a whole request
	open   prometheus.Gauge
	closed prometheus.Counter

	mu      sync.Mutex
	conns   map[net.Conn]*connInfo
	later   *time.Timer // looks again once a new connection's grace ends; nil for none
	stopped bool
}

// connInfo is what connCap knows of a connection.
type connInfo struct {
	state http.ConnState // StateNew, StateActive or StateIdle
	since time.Time      // when it was accepted, or last went idle
}

// track follows conn into state.
func (c *connCap) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateNew, http.StateIdle:
		c.conns[conn] = &connInfo{state: state, since: time.Now()}
	case http.StateActive:
		if ci := c.conns[conn]; ci != nil {
			ci.state = state
		}
	default: // closed or hijacked
		delete(c.conns, conn)
	}
	c.open.Set(float64(len(c.conns)))
	c.shed()
}

// shed closes, while the server holds its cap of connections, the one that
// has waited longest of those that serve no request: idle between requests,
// or new and silent past the grace. When only new ones within their grace
// could go, it looks again when the first grace ends.
func (c *connCap) shed() {
	if len(c.conns) < c.max || c.stopped {
		return
	}
	now := time.Now()
	var oldest net.Conn
	var since time.Time
	var next time.Duration // until a new connection's grace ends
	for conn, ci := range c.conns {
		switch {
		case ci.state == http.StateActive:
			continue
		case ci.state == http.StateNew && now.Sub(ci.since) < c.grace:
			if left := c.grace - now.Sub(ci.since); next == 0 || left < next {
				next = left
			}
			continue
		}
		if oldest == nil || ci.since.Before(since) {
			oldest, since = conn, ci.since
		}
	}
	switch {
	case oldest != nil:
		delete(c.conns, oldest)
		c.open.Set(float64(len(c.conns)))
		c.closed.Inc()
		_ = oldest.Close()
	case next > 0 && c.later == nil:
		c.later = time.AfterFunc(next, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.later = nil
			c.shed()
		})
	}
}

// stop ends the closing of connections: the server shuts down.
func (c *connCap) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.later != nil {
		c.later.Stop()
		c.later = nil
	}
}
