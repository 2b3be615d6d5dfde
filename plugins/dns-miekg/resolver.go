package dnsmiekg

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Resolver resolves names by querying its servers in order. It is safe for
// concurrent use.
type Resolver struct {
	servers   []server      // in the order they are tried
	transport string        // "udp", "tcp", "tls" or "doh"
	doh       *doh          // the endpoint of transport "doh"
	fallback  bool          // retry a truncated UDP reply over TCP
	qtypes    []uint16      // dns.TypeA and/or dns.TypeAAAA, in answer order
	edns      uint16        // EDNS0 UDP payload size; 0 sends no OPT record
	do        bool          // the DNSSEC OK bit
	timeout   time.Duration // per query; 0 leaves only the attempt's deadline (the query dialer's default)
	retries   int
	rcodes    []int        // the rcodes that end a lookup well; nil means NOERROR only
	norec     bool         // clear the RD (recursion desired) bit
	clock     string       // of the phase's end: sdk.ClockProcess, or sdk.ClockKernel for the kernel's stamp on a UDP reply
	unhold    func() error // with sdk.ClockKernel: ends holdStamps
}

// server is one server to ask.
type server struct {
	addr string          // "addr:port"
	udp  *net.UDPAddr    // the same, for transport "udp"
	tls  *tls.Config     // with transport "tls"
	doh  *http.Transport // with transport "doh": its connections outlive a query
}

// New returns a Resolver configured by cfg, a value of the plugin's resolver
// schema. It reads ca_file. A bad attribute is reported as an
// *sdk.AttrError.
func New(cfg cty.Value) (*Resolver, error) {
	r := &Resolver{transport: sdk.String(cfg, "transport"), fallback: sdk.Bool(cfg, "tcp_fallback"), do: sdk.Bool(cfg, "dnssec_ok")}
	port := uint16(53)
	switch r.transport {
	case "udp", "tcp":
		if err := notUsed(cfg, r.transport, "server_name", "ca_file", "url", "method"); err != nil {
			return nil, err
		}
	case "tls":
		port = 853
		if err := notUsed(cfg, r.transport, "url", "method"); err != nil {
			return nil, err
		}
	case "doh":
		port = 443
		if err := notUsed(cfg, r.transport, "server_name"); err != nil {
			return nil, err
		}
		var err error
		if r.doh, err = parseDoH(cfg); err != nil {
			return nil, err
		}
	default:
		return nil, sdk.AttrErrorf("transport", "Invalid transport", `transport must be "udp", "tcp", "tls" or "doh", got %q.`, r.transport)
	}
	addrs, err := parseServers(sdk.Strings(cfg, "servers"), port)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if path := sdk.String(cfg, "ca_file"); path != "" {
		if roots, err = loadRoots(path); err != nil {
			return nil, err
		}
	}
	for _, a := range addrs {
		s := server{addr: a.String(), udp: net.UDPAddrFromAddrPort(a)}
		if r.doh != nil {
			s.doh = newDoHTransport(s.addr, r.doh.url.Hostname(), roots)
		}
		if r.transport == "tls" {
			name := sdk.String(cfg, "server_name")
			if name == "" {
				name = a.Addr().String()
			}
			s.tls = &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		r.servers = append(r.servers, s)
	}
	if r.qtypes, err = parseTypes(sdk.Strings(cfg, "query_types")); err != nil {
		return nil, err
	}
	if err := r.readEDNS(cfg); err != nil {
		return nil, err
	}
	if r.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	if r.timeout == 0 {
		return nil, sdk.AttrErrorf("timeout", "Invalid duration", "timeout must be greater than zero.")
	}
	if r.retries, err = sdk.Int(cfg, "retries"); err != nil {
		return nil, err
	}
	if r.retries < 0 {
		return nil, sdk.AttrErrorf("retries", "Invalid retries", "retries must be 0 or more, got %d.", r.retries)
	}
	switch r.clock = sdk.String(cfg, "clock"); r.clock {
	case "":
		r.clock = sdk.ClockProcess
	case sdk.ClockProcess:
	case sdk.ClockKernel:
		if r.transport != "udp" {
			return nil, sdk.AttrErrorf("clock", "Not used by this transport", `clock = %q applies to transport "udp" only; transport is %q.`, sdk.ClockKernel, r.transport)
		}
		if r.unhold, err = holdStamps(); err != nil {
			return nil, fmt.Errorf("clock = %q: ask the kernel to stamp arriving packets: %w", sdk.ClockKernel, err)
		}
	default:
		return nil, sdk.AttrErrorf("clock", "Invalid clock", "clock must be %q or %q, got %q.", sdk.ClockProcess, sdk.ClockKernel, r.clock)
	}
	return r, nil
}

// notUsed returns an *sdk.AttrError for the first of attrs set in cfg:
// they do not apply to transport.
func notUsed(cfg cty.Value, transport string, attrs ...string) error {
	applies := map[string]string{"server_name": `"tls"`, "ca_file": `"tls" and "doh"`, "url": `"doh"`, "method": `"doh"`}
	for _, attr := range attrs {
		if sdk.String(cfg, attr) != "" {
			return sdk.AttrErrorf(attr, "Not used by this transport", `%s applies to transport %s only; transport is %q.`, attr, applies[attr], transport)
		}
	}
	return nil
}

// Close closes the idle connections of transport "doh".
func (r *Resolver) Close() error {
	for _, s := range r.servers {
		if s.doh != nil {
			s.doh.CloseIdleConnections()
		}
	}
	if r.unhold != nil {
		return r.unhold()
	}
	return nil
}

// parseServers checks that each server is an IP literal with an optional
// port, port by default.
func parseServers(list []string, port uint16) ([]netip.AddrPort, error) {
	if len(list) == 0 {
		return nil, sdk.AttrErrorf("servers", "No servers", "servers must list at least one server.")
	}
	out := make([]netip.AddrPort, len(list))
	for i, s := range list {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				ap = netip.AddrPortFrom(a, port)
			}
		}
		if err != nil || ap.Port() == 0 {
			return nil, sdk.AttrErrorf("servers", "Invalid server",
				`servers[%d] must be an IP address with an optional port, such as "9.9.9.9:53" or "[2620:fe::fe]:853", got %q.`, i, s)
		}
		out[i] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return out, nil
}

// parseTypes reads query_types: "A" and "AAAA", each at most once.
func parseTypes(list []string) ([]uint16, error) {
	if len(list) == 0 {
		return nil, sdk.AttrErrorf("query_types", "No query types", `query_types must list "A", "AAAA" or both.`)
	}
	out := make([]uint16, 0, len(list))
	for _, s := range list {
		t := dns.StringToType[strings.ToUpper(s)]
		if (t != dns.TypeA && t != dns.TypeAAAA) || slices.Contains(out, t) {
			return nil, sdk.AttrErrorf("query_types", "Invalid query type",
				`query_types must list "A", "AAAA" or both, each once; got %q.`, list)
		}
		out = append(out, t)
	}
	return out, nil
}

// loadRoots reads a PEM file of root certificates.
func loadRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, sdk.AttrErrorf("ca_file", "Unreadable CA file", "Cannot read ca_file: %s.", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, sdk.AttrErrorf("ca_file", "Invalid CA file", "ca_file %s holds no PEM certificate.", path)
	}
	return pool, nil
}

// Resolve queries every query type for req.Host at once and returns their
// addresses in query_types order. An IP literal is answered at once without
// a query.
func (r *Resolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	callAt := time.Now()
	span := sdk.StartSpan(sdk.PhaseResolve, callAt)
	if addr, err := netip.ParseAddr(req.Host); err == nil {
		addr = addr.Unmap()
		return &sdk.ResolveResponse{
			Addresses: []netip.Addr{addr},
			Phases:    []sdk.Phase{span.End(true, map[string]any{"addresses": []string{addr.String()}, "literal": true})},
		}, nil
	}

	name := dns.Fqdn(req.Host)
	lookups := make([]lookup, len(r.qtypes))
	var wg sync.WaitGroup
	for i := 1; i < len(lookups); i++ {
		wg.Go(func() { lookups[i] = r.lookup(ctx, callAt, r.servers, name, r.qtypes[i]) })
	}
	lookups[0] = r.lookup(ctx, callAt, r.servers, name, r.qtypes[0])
	wg.Wait()
	// The phase ends here: what follows is probe's account of it, which
	// the attrs carry and the attempt's overhead_ms counts, as dial-tcp's.
	attrs := make(map[string]any, 16)
	phase := r.end(span, attrs, callAt, lookups)

	var (
		addrs []netip.Addr
		ttl   uint32
		tries []try
	)
	for i := range lookups {
		l := &lookups[i]
		if len(l.addrs) > 0 && (len(addrs) == 0 || l.ttl < ttl) {
			ttl = l.ttl
		}
		addrs = append(addrs, l.addrs...)
		tries = append(tries, l.tries...)
	}
	slices.SortStableFunc(tries, func(a, b try) int { return cmp.Compare(a.start, b.start) })
	triesAttr := make([]any, len(tries))
	for i := range tries {
		triesAttr[i] = tries[i].attrs()
	}

	decisive := decide(lookups)
	fail := decisive.fail
	if fail == nil && len(decisive.addrs) == 0 { // every type replied NOERROR without an address
		types := make([]string, len(r.qtypes))
		for i, t := range r.qtypes {
			types[i] = dns.TypeToString[t]
		}
		fail = &sdk.Failure{Class: sdk.ClassDNSNoAnswer,
			Message: fmt.Sprintf("query %s %s @%s: no address records", name, strings.Join(types, ", "), decisive.reply.server)}
	}

	attrs["transport"], attrs["tries"] = r.transport, triesAttr
	if rep := decisive.reply; rep != nil {
		attrs["server"] = rep.server
		attrs["rcode"] = rcodeString(rep.msg.Rcode)
		attrs["rtt_ms"] = sdk.Milliseconds(rep.rtt)
		attrs["size"] = rep.size
		attrs["ad"] = rep.msg.AuthenticatedData
		attrs["answer_rrs"], attrs["authority_rrs"], attrs["additional_rrs"] = len(rep.msg.Answer), len(rep.msg.Ns), len(rep.msg.Extra)
		if r.transport == "udp" {
			attrs["tcp_fallback"] = rep.transport == "tcp"
		}
		if t := rep.doh; t != nil {
			attrs["reused"], attrs["http_version"] = t.reused, t.proto
			if !t.reused {
				attrs["connect_ms"], attrs["tls_ms"] = sdk.Milliseconds(t.connect), sdk.Milliseconds(t.tls)
			}
		}
	}
	if r.doh != nil {
		attrs["url"] = r.doh.url.String()
	}
	if fail != nil {
		fail.Phase = sdk.PhaseResolve
		phase.OK = false
		return &sdk.ResolveResponse{Phases: []sdk.Phase{phase}, Failure: fail}, nil
	}
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	attrs["addresses"] = strs
	attrs["ttl"] = int(ttl)
	return &sdk.ResolveResponse{Addresses: addrs, Phases: []sdk.Phase{phase}}, nil
}

// end ends the resolve phase as its lookups have, ok until the caller
// says otherwise: on the process's clock, or with clock = "kernel" on the
// kernel's, at the latest stamp of the replies that ended the lookups when
// each ended on a stamped UDP reply. The process's clock adds, after the
// last reply arrived, the wait for the process to run (on a busy machine,
// the phase's largest error), the read and the parse. Its attribute
// "clock", set in attrs, says which it is.
func (r *Resolver) end(span sdk.Span, attrs map[string]any, callAt time.Time, lookups []lookup) sdk.Phase {
	phase := span.End(true, attrs)
	attrs["clock"] = sdk.ClockProcess
	if r.clock != sdk.ClockKernel {
		return phase
	}
	var last time.Time
	for i := range lookups {
		a := lookups[i].arrived
		if a.IsZero() {
			return phase
		}
		if a.After(last) {
			last = a
		}
	}
	if d := last.Sub(callAt.Add(phase.Start)); d >= 0 && d <= phase.Duration {
		phase.Duration = d
		attrs["clock"] = sdk.ClockKernel
	}
	return phase
}

// decide returns the lookup whose outcome decides the resolution: the first
// that the context ended (the attempt is over, whatever else came back) or
// that found no file descriptor (its answer is unknown), else the first with
// addresses, else the first that failed, else the first.
func decide(lookups []lookup) *lookup {
	for _, match := range []func(*lookup) bool{
		func(l *lookup) bool { return l.ctxFail || (l.fail != nil && l.fail.Class == sdk.ClassFDLimit) },
		func(l *lookup) bool { return len(l.addrs) > 0 },
		func(l *lookup) bool { return l.fail != nil },
	} {
		for i := range lookups {
			if match(&lookups[i]) {
				return &lookups[i]
			}
		}
	}
	return &lookups[0]
}

// lookup is the outcome of asking for one record type: every query sent,
// and the reply that ended the search.
type lookup struct {
	tries   []try
	reply   *reply       // nil when no server replied
	addrs   []netip.Addr // of a NOERROR reply
	ttl     uint32       // least TTL of the address records
	fail    *sdk.Failure // nil for a NOERROR reply
	ctxFail bool         // fail is the context's: canceled, or the attempt's deadline passed
	arrived time.Time    // when the kernel stamped the reply that ended the lookup; zero when it did not, or none did
}

// reply is a parsed reply and how it came.
type reply struct {
	server    string
	transport string // "tcp" after a fallback from "udp"
	msg       *dns.Msg
	size      int // bytes on the wire, without the TCP length prefix
	rtt       time.Duration
	arrived   time.Time // the kernel's stamp of its arrival, on the monotonic clock; zero without one
	doh       *try      // over "doh": the query's connection facts
}

// try is one query sent: the sub-timing the phase reports for it.
type try struct {
	server    string
	qtype     uint16
	transport string
	start     time.Duration // from the resolver's call
	connect   time.Duration // TCP connect and, over "tls", the TLS handshake; 0 over UDP
	tls       time.Duration // over "doh": the TLS handshake
	reused    bool          // over "doh": the query went over a connection kept from an earlier one
	status    int           // over "doh": the HTTP status; 0 without a response
	proto     string        // over "doh": the HTTP version of the response
	rtt       time.Duration // from sending to the reply, or to giving up
	size      int           // of the reply; 0 without one
	outcome   string        // the reply's rcode, "truncated", "timeout", "error", "malformed" or "canceled"
}

func (t *try) attrs() map[string]any {
	m := map[string]any{"server": t.server, "type": dns.TypeToString[t.qtype], "transport": t.transport,
		"start_ms": sdk.Milliseconds(t.start), "rtt_ms": sdk.Milliseconds(t.rtt), "outcome": t.outcome}
	if t.transport != "udp" {
		m["connect_ms"] = sdk.Milliseconds(t.connect)
	}
	if t.transport == "doh" {
		m["tls_ms"], m["reused"] = sdk.Milliseconds(t.tls), t.reused
		if t.status != 0 {
			m["status"], m["http_version"] = t.status, t.proto
		}
	}
	if t.size > 0 {
		m["size"] = t.size
	}
	return m
}

// lookup asks servers in order, for 1+retries rounds, for name's
// records of type qtype, moving on to the next server when one does not
// reply. A reply ends the search: a truncated UDP reply is asked again over
// TCP (tcp_fallback), and a reply with an rcode not in r.rcodes (an error
// rcode by default), truncated or malformed fails the lookup.
func (r *Resolver) lookup(ctx context.Context, callAt time.Time, servers []server, name string, qtype uint16) lookup {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = !r.norec
	m.AuthenticatedData = true // ask for the AD bit (RFC 6840 §5.7)
	if r.edns > 0 {
		m.SetEdns0(r.edns, r.do)
	}
	var (
		l     lookup
		errs  []string
		class sdk.Class
	)
	for range r.retries + 1 {
		for _, s := range servers {
			if c, err := ctxDone(ctx); c != "" {
				return l.failed(c, true, fmt.Sprintf("%s: %v", what(name, qtype, s), err))
			}
			rep, err := r.send(ctx, &l, callAt, m, s, r.transport)
			if err == nil && rep.msg.Truncated && r.transport == "udp" {
				if !r.fallback {
					l.reply, l.arrived = rep, rep.arrived
					return l.failed(sdk.ClassDNSTruncated, false, what(name, qtype, s)+": truncated reply (TC set) and tcp_fallback is off")
				}
				trunc := rep
				if rep, err = r.send(ctx, &l, callAt, m, s, "tcp"); rep == nil {
					l.reply = trunc
					msg := fmt.Sprintf("%s: truncated reply (TC set); over TCP: %v", what(name, qtype, s), err)
					if c, _ := ctxDone(ctx); c != "" {
						return l.failed(c, true, msg)
					}
					if sdk.FDLimit(err) {
						return l.failed(sdk.ClassFDLimit, false, msg)
					}
					return l.failed(sdk.ClassDNSTruncated, false, msg)
				}
			}
			switch {
			case rep == nil:
				msg := fmt.Sprintf("%s: %v", what(name, qtype, s), err)
				if c, _ := ctxDone(ctx); c != "" {
					return l.failed(c, true, msg)
				}
				if sdk.FDLimit(err) { // probe's own limit: another server would fare no better
					return l.failed(sdk.ClassFDLimit, false, msg)
				}
				errs = append(errs, msg)
				class = sdk.ClassDNSError
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					class = sdk.ClassDNSTimeout
				}
				continue
			case err != nil:
				return l.failed(sdk.ClassDNSMalformed, false, fmt.Sprintf("%s: malformed reply: %v", what(name, qtype, s), err))
			}
			l.reply, l.arrived = rep, rep.arrived
			if !r.validRcode(rep.msg.Rcode) {
				msg := what(name, qtype, s) + ": " + rcodeString(rep.msg.Rcode)
				if r.rcodes != nil {
					msg += ", not one of valid_rcodes"
				}
				return l.failed(rcodeClass(rep.msg.Rcode), false, msg)
			}
			for _, rr := range rep.msg.Answer {
				var ip net.IP
				switch rr := rr.(type) {
				case *dns.A:
					ip = rr.A
				case *dns.AAAA:
					ip = rr.AAAA
				}
				a, ok := netip.AddrFromSlice(ip)
				if !ok || rr.Header().Rrtype != qtype {
					continue
				}
				if ttl := rr.Header().Ttl; len(l.addrs) == 0 || ttl < l.ttl {
					l.ttl = ttl
				}
				l.addrs = append(l.addrs, a.Unmap())
			}
			return l
		}
	}
	return l.failed(class, false, strings.Join(errs, "; "))
}

// validRcode reports whether rcode ends a lookup well.
func (r *Resolver) validRcode(rcode int) bool {
	if r.rcodes == nil {
		return rcode == dns.RcodeSuccess
	}
	return slices.Contains(r.rcodes, rcode)
}

// failed ends the lookup with a failure; byCtx says the context caused it.
func (l *lookup) failed(class sdk.Class, byCtx bool, msg string) lookup {
	l.fail, l.ctxFail = &sdk.Failure{Class: class, Message: msg}, byCtx
	return *l
}

// what names a query in failure messages: "query NAME TYPE @SERVER".
func what(name string, qtype uint16, s server) string {
	return "query " + name + " " + dns.TypeToString[qtype] + " @" + s.addr
}

// send sends m to s over transport, records the try in l, and returns the
// reply. The reply is nil when none came (err says why); err is set with a
// reply whose bytes do not parse.
func (r *Resolver) send(ctx context.Context, l *lookup, callAt time.Time, m *dns.Msg, s server, transport string) (*reply, error) {
	begin := time.Now()
	t := try{server: s.addr, qtype: m.Question[0].Qtype, transport: transport, start: begin.Sub(callAt)}
	rep, err := r.exchange(ctx, &t, begin, m, s)
	switch {
	case rep != nil && err != nil:
		t.size, t.outcome = rep.size, "malformed"
	case rep != nil:
		t.size, t.outcome = rep.size, rcodeString(rep.msg.Rcode)
		if rep.msg.Truncated && transport == "udp" {
			t.outcome = "truncated"
		}
	case errors.Is(ctx.Err(), context.Canceled):
		t.outcome = "canceled"
	default:
		t.outcome = "error"
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.outcome = "timeout"
		}
	}
	l.tries = append(l.tries, t)
	return rep, err
}

// exchange connects to s over t.transport, sends m with a fresh ID and reads
// the reply, within the timeout and ctx; canceling ctx ends it at once. It
// fills in t's connect and round-trip times. A reply that arrived but does
// not parse is returned with its error.
func (r *Resolver) exchange(ctx context.Context, t *try, begin time.Time, m *dns.Msg, s server) (*reply, error) {
	var deadline time.Time
	if r.timeout > 0 {
		deadline = begin.Add(r.timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if t.transport == "doh" {
		return r.exchangeDoH(ctx, t, deadline, m, s)
	}
	stamped := r.clock == sdk.ClockKernel && t.transport == "udp"
	var (
		conn net.Conn
		err  error
	)
	switch t.transport {
	case "tls":
		conn, err = (&tls.Dialer{NetDialer: &net.Dialer{Deadline: deadline}, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	case "udp":
		// net.DialUDP to the address New parsed, not a Dialer's
		// DialContext, which parses the string and runs its dial
		// machinery on every query: dns.resolve_vs_miekg (make
		// bench-dns) read 0.92-0.94 with it, 0.96-0.99 without. A UDP
		// connect does not wait for the network, so there is nothing for
		// ctx to cut short.
		var uc *net.UDPConn
		if uc, err = net.DialUDP("udp", nil, s.udp); err == nil {
			conn = uc
			if stamped {
				if err = stampOn(uc); err != nil {
					uc.Close()
					err = fmt.Errorf("ask the kernel to stamp replies: %w", err)
				}
			}
		}
	default:
		conn, err = (&net.Dialer{Deadline: deadline}).DialContext(ctx, t.transport, s.addr)
	}
	sent := time.Now()
	t.connect = sent.Sub(begin)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(deadline)

	co := &dns.Conn{Conn: conn, UDPSize: r.edns}
	m.Id = dns.Id()
	if err := co.WriteMsg(m); err != nil {
		t.rtt = time.Since(sent)
		return nil, err
	}
	for {
		var (
			p       []byte
			arrived time.Time
		)
		if stamped {
			p, arrived, err = readStamped(conn.(*net.UDPConn), r.edns, sent)
		} else {
			p, err = co.ReadMsgHeader(nil)
		}
		t.rtt = time.Since(sent)
		if !arrived.IsZero() {
			t.rtt = arrived.Sub(sent)
		}
		switch {
		case err != nil && !errors.Is(err, dns.ErrShortRead):
			return nil, err
		case err == nil && t.transport == "udp" && binary.BigEndian.Uint16(p) != m.Id:
			continue // a late reply to an earlier query, or a stray
		}
		rep := &reply{server: s.addr, transport: t.transport, msg: new(dns.Msg), size: len(p), rtt: t.rtt, arrived: arrived}
		if err == nil {
			err = rep.msg.Unpack(p)
		}
		if err == nil && rep.msg.Id != m.Id {
			err = dns.ErrId
		}
		if err == nil {
			err = sameQuestion(rep.msg, m)
		}
		return rep, err
	}
}

// readStamped reads one datagram from c as dns.Conn.ReadMsgHeader does
// (into a buffer of size, at least dns.MinMsgSize), with the kernel's
// stamp of its arrival placed on the monotonic clock: zero when it has
// none, or when the wall clock it is on stepped since sent.
func readStamped(c *net.UDPConn, size uint16, sent time.Time) ([]byte, time.Time, error) {
	p := make([]byte, max(int(size), dns.MinMsgSize))
	oob := make([]byte, stampSpace)
	n, oobn, _, _, err := c.ReadMsgUDPAddrPort(p, oob)
	now := time.Now()
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case n < dnsHeaderSize:
		return nil, time.Time{}, dns.ErrShortRead
	}
	var arrived time.Time
	if wall, ok := stampOf(oob[:oobn]); ok {
		// How long ago on the wall clock, taken from now on the monotonic.
		if ago := now.Round(0).Sub(wall); ago >= 0 {
			if a := now.Add(-ago); !a.Before(sent) {
				arrived = a
			}
		}
	}
	return p[:n], arrived, nil
}

// dnsHeaderSize is the length of a DNS message's header: a reply shorter
// is dns.ErrShortRead, as miekg/dns reads it.
const dnsHeaderSize = 12

// sameQuestion checks that reply answers query's question. A reply without
// a question section passes (some servers send none with an error rcode).
func sameQuestion(reply, query *dns.Msg) error {
	q := query.Question[0]
	switch {
	case len(reply.Question) == 0:
		return nil
	case len(reply.Question) > 1:
		return fmt.Errorf("%d questions in the reply", len(reply.Question))
	}
	if r := reply.Question[0]; r.Qtype != q.Qtype || r.Qclass != q.Qclass || !strings.EqualFold(r.Name, q.Name) {
		return fmt.Errorf("reply to another question: %s %s", r.Name, dns.TypeToString[r.Qtype])
	}
	return nil
}

// ctxDone returns the failure class and error of a finished ctx, and "" for
// a live one. ctx counts as expired once its deadline has passed, even before
// ctx itself notices: a socket deadline taken from ctx fires at that instant.
func ctxDone(ctx context.Context) (sdk.Class, error) {
	if err := ctx.Err(); err != nil {
		return sdk.ContextClass(ctx, sdk.ClassDNSTimeout), err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return sdk.ClassDNSTimeout, context.DeadlineExceeded
	}
	return "", nil
}

// rcodeClass returns the failure class of a reply with a failing rcode.
func rcodeClass(rcode int) sdk.Class {
	switch rcode {
	case dns.RcodeSuccess: // not one of the query dialer's valid_rcodes
		return ClassUnexpectedRcode
	case dns.RcodeNameError:
		return sdk.ClassDNSNXDomain
	case dns.RcodeServerFailure:
		return sdk.ClassDNSServFail
	case dns.RcodeRefused:
		return sdk.ClassDNSRefused
	default:
		return sdk.ClassDNSError
	}
}

// rcodeString names rcode ("NXDOMAIN"), or gives its number when it has no
// name.
func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

var _ sdk.Resolver = (*Resolver)(nil)

// readEDNS reads edns_buffer_size (0, no EDNS0, or a size DNS allows) and
// checks that dnssec_ok has the OPT record it is a flag of.
func (r *Resolver) readEDNS(cfg cty.Value) error {
	size, err := sdk.Int(cfg, "edns_buffer_size")
	if err != nil {
		return err
	}
	if size != 0 && (size < dns.MinMsgSize || size > dns.MaxMsgSize) {
		return sdk.AttrErrorf("edns_buffer_size", "Invalid EDNS buffer size",
			"edns_buffer_size must be 0 (no EDNS0) or from 512 to 65535, got %d.", size)
	}
	r.edns = uint16(size)
	if r.do && r.edns == 0 {
		return sdk.AttrErrorf("dnssec_ok", "DNSSEC OK needs EDNS0",
			"dnssec_ok is a flag of the EDNS0 OPT record, which edns_buffer_size = 0 turns off.")
	}
	return nil
}
