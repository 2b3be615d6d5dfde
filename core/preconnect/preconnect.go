// Package preconnect warms the connections a Go service will need, at
// start-up, without making it wait: it runs a probe pipeline for each target
// in the background (resolve, connect, TLS), keeps the connections it opened,
// and hands them to the service's first requests through an http.Transport.
// The warm-up's results are the same phases and statistics `probe run`
// reports.
//
// A connection is handed out once, only while it is fresh (younger than
// Options.MaxIdle and not closed by the peer); otherwise the service dials as
// usual, reusing the addresses the warm-up resolved while their TTL lasts.
//
// A warm-up is never fatal: a pipeline file that cannot be loaded makes
// StartFile return an error and a pool that warms nothing and dials as
// usual.
package preconnect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
)

// Options configure a warm-up.
type Options struct {
	// Engine schedules the warm-up; its zero value probes every target once,
	// 64 at a time, with a 5 s deadline per attempt. Attempts > 1 opens that
	// many warm connections per target.
	Engine engine.Options
	// MaxIdle is how long a warm connection stays usable. Default 30s:
	// shorter than most servers' idle timeouts.
	MaxIdle time.Duration
	// TLSConfig is used to dial when no warm connection is at hand. Nil: the
	// system's roots. Without NextProtos, HTTP/2 and HTTP/1.1 are offered.
	TLSConfig *tls.Config
	// Logger receives a line per target when the warm-up ends. Default: none.
	Logger hclog.Logger
	// OnDone, when set, is called once with the warm-up's result.
	OnDone func(*engine.Result)
}

// DefaultMaxIdle is the default of Options.MaxIdle.
const DefaultMaxIdle = 30 * time.Second

// Pool holds the warm connections of a warm-up. Its methods are safe for
// concurrent use and work while the warm-up is still running (they dial
// normally until a connection is warm).
type Pool struct {
	opts Options
	done chan struct{}

	mu     sync.Mutex
	result *engine.Result
	warm   map[string][]warmConn // by "host:port"
	dns    map[string]dnsAnswer  // by host
	closed bool
	hits   int
	misses int
}

// warmConn is a connection the warm-up opened.
type warmConn struct {
	conn net.Conn
	at   time.Time
}

// dnsAnswer is what the warm-up resolved for a host.
type dnsAnswer struct {
	addrs   []string
	expires time.Time
}

// Start warms targets in the background and returns at once. Cancel ctx to
// stop the warm-up early; Close the pool when the service no longer needs it.
// A pool of no targets warms nothing and dials as usual: what a service
// whose warm-up is optional can use when it has none.
func Start(ctx context.Context, targets []*engine.Target, opts Options) *Pool {
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = DefaultMaxIdle
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	p := &Pool{opts: opts, done: make(chan struct{}), warm: map[string][]warmConn{}, dns: map[string]dnsAnswer{}}
	eo := opts.Engine
	eo.Keep = p.keep
	eng := engine.New(eo)
	go func() {
		res := eng.Run(ctx, targets)
		p.mu.Lock()
		p.result = res
		p.mu.Unlock()
		p.log(res)
		close(p.done)
		if opts.OnDone != nil {
			opts.OnDone(res)
		}
	}()
	return p
}

// StartFile loads the pipeline file at path with cfg (which names the
// plugins it may use) and warms its targets in the background. The file's
// run block sets the engine options; the fields opts.Engine sets win.
//
// The pool is never nil. When the file cannot be read or is invalid,
// StartFile returns the error, which names the file (and, for the file's
// own mistakes, each line and what is wrong there), and a pool that warms
// nothing: its transport dials as usual with opts.TLSConfig, its warm-up is
// done at once and Options.OnDone is called with a result of no targets. A
// service logs the error and goes on.
func StartFile(ctx context.Context, path string, cfg config.Options, opts Options) (*Pool, error) {
	src, err := config.ReadFile(path)
	if err != nil {
		return Start(ctx, nil, opts), fmt.Errorf("preconnect: load %s: %w", path, err)
	}
	f, diags := config.NewLoader(cfg).LoadSource(path, src)
	if diags.HasErrors() {
		return Start(ctx, nil, opts), fmt.Errorf("preconnect: %s", diagText(path, diags))
	}
	opts.Engine = fileOptions(f.Options, opts.Engine)
	p := Start(ctx, f.Targets, opts)
	go func() {
		<-p.done
		_ = f.Close()
	}()
	return p, nil
}

// diagText renders the errors of diags on one line, each as "file:line:
// summary: detail", for an error a service logs.
func diagText(path string, diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := path
		if d.Subject != nil {
			msg = fmt.Sprintf("%s:%d", d.Subject.Filename, d.Subject.Start.Line)
		}
		msg += ": " + d.Summary
		if d.Detail != "" {
			msg += ": " + strings.TrimSuffix(d.Detail, ".")
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

// fileOptions returns the run block's options with the fields o sets
// taking precedence.
func fileOptions(file, o engine.Options) engine.Options {
	if o.Mode != "" {
		file.Mode = o.Mode
	}
	if o.Concurrency > 0 {
		file.Concurrency = o.Concurrency
	}
	if o.Attempts > 0 {
		file.Attempts = o.Attempts
	}
	if o.Interval > 0 {
		file.Interval = o.Interval
	}
	if o.Timeout > 0 {
		file.Timeout = o.Timeout
	}
	if o.Logger != nil {
		file.Logger = o.Logger
	}
	return file
}

// keep is the engine's Keep hook: it takes the connection of every attempt
// that succeeded, if the service can use it in this process.
func (p *Pool) keep(t *engine.Target, a *engine.Attempt, conn net.Conn) bool {
	if _, ok := conn.(*tls.Conn); !ok {
		if _, ok := conn.(syscall.Conn); !ok {
			return false // held by a plugin process: not usable here
		}
	}
	key := net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	// A probe's connection has no TCP keep-alive (sdk.DialTCP); one kept
	// for the service gets Go's default, as the service's own dial would.
	if tc, ok := socket(conn).(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
	p.warm[key] = append(p.warm[key], warmConn{conn: conn, at: time.Now()})
	if ans, ok := resolved(a); ok {
		p.dns[t.Host] = ans
	}
	return true
}

// resolved returns the addresses and TTL of an attempt's resolve phase,
// when its resolver reported a TTL.
func resolved(a *engine.Attempt) (dnsAnswer, bool) {
	for _, ph := range a.Phases {
		if ph.Name != "resolve" || !ph.OK {
			continue
		}
		ttl, ok := ph.Attrs["ttl"].(int)
		if !ok || ttl <= 0 {
			if f, isFloat := ph.Attrs["ttl"].(float64); isFloat && f > 0 {
				ttl, ok = int(f), true
			}
		}
		if !ok || ttl <= 0 {
			return dnsAnswer{}, false
		}
		var addrs []string
		switch v := ph.Attrs["addresses"].(type) {
		case []string:
			addrs = v
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok {
					addrs = append(addrs, s)
				}
			}
		}
		if len(addrs) == 0 {
			return dnsAnswer{}, false
		}
		return dnsAnswer{addrs: addrs, expires: a.Started.Add(time.Duration(ttl) * time.Second)}, true
	}
	return dnsAnswer{}, false
}

func (p *Pool) log(res *engine.Result) {
	for _, tr := range res.Targets {
		args := []any{"target", tr.Target.Name, "ok", tr.OK}
		if s, ok := tr.Stats[engine.TotalPhase]; ok && s.OK > 0 {
			args = append(args, "total", s.P50)
		}
		for c := range tr.FailuresByClass {
			args = append(args, "failure", c)
		}
		p.opts.Logger.Info("preconnect", args...)
	}
}

// Done is closed when the warm-up has finished.
func (p *Pool) Done() <-chan struct{} { return p.done }

// Result returns the warm-up's result, nil while it runs.
func (p *Pool) Result() *engine.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result
}

// Wait waits for the warm-up to finish, or for ctx.
func (p *Pool) Wait(ctx context.Context) (*engine.Result, error) {
	select {
	case <-p.done:
		return p.Result(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats returns how many dials a warm connection served, and how many
// dialed anew.
func (p *Pool) Stats() (hits, misses int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits, p.misses
}

// take returns a fresh warm connection for addr of the wanted kind, closing
// the stale ones it meets.
func (p *Pool) take(addr string, wantTLS bool) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := p.warm[addr]
	for i := 0; i < len(conns); i++ {
		w := conns[i]
		_, isTLS := w.conn.(*tls.Conn)
		if isTLS != wantTLS {
			continue
		}
		conns = append(conns[:i], conns[i+1:]...)
		i--
		if time.Since(w.at) > p.opts.MaxIdle || !alive(w.conn) {
			_ = w.conn.Close()
			continue
		}
		p.warm[addr] = conns
		p.hits++
		return w.conn
	}
	p.warm[addr] = conns
	p.misses++
	return nil
}

// socket returns the connection under conn's TLS, or conn.
func socket(conn net.Conn) net.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return conn
}

// alive reports whether the peer has not closed conn: a peek at its socket
// finds no end of stream. Pending bytes (a TLS 1.3 session ticket) are fine.
func alive(conn net.Conn) bool {
	sc, ok := socket(conn).(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	buf := make([]byte, 1)
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n > 0 || errors.Is(err, syscall.EAGAIN)
		return true
	})
	return ok
}

// DialContext is for http.Transport.DialContext: a warm plain connection to
// addr when there is a fresh one, else a new connection, to the addresses
// the warm-up resolved while their TTL lasts.
func (p *Pool) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := p.take(addr, false); c != nil {
		return c, nil
	}
	return p.dial(ctx, network, addr)
}

// DialTLSContext is for http.Transport.DialTLSContext: a warm TLS
// connection to addr when there is a fresh one, else a new connection and
// handshake with Options.TLSConfig.
func (p *Pool) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := p.take(addr, true); c != nil {
		return c, nil
	}
	raw, err := p.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := p.opts.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// dial connects to addr, to an address the warm-up resolved for its host
// when that answer is still within its TTL.
func (p *Pool) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	ans, ok := p.dns[host]
	p.mu.Unlock()
	var d net.Dialer
	if ok && time.Now().Before(ans.expires) {
		var errs []error
		for _, a := range ans.addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a, port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return d.DialContext(ctx, network, addr)
}

// Transport returns an http.Transport that takes warm connections from the
// pool. HTTP/2 is used when the warm-up's TLS handshake negotiated it.
func (p *Pool) Transport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         p.DialContext,
		DialTLSContext:      p.DialTLSContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// Close closes the warm connections not handed out. The warm-up itself ends
// with the context given to Start.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, conns := range p.warm {
		for _, w := range conns {
			_ = w.conn.Close()
		}
	}
	p.warm = map[string][]warmConn{}
	return nil
}
