package conformance

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/probe-dev/probe/internal/lab"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serverDelay is how long after accepting a connection a server of the
// check holds its first read (or, for the greeting server, its greeting):
// a handshake that waits for the server's answer measures at least that.
const serverDelay = 40 * time.Millisecond

// Behaviours of a check server.
const (
	answer = "answer"  // the server's protocol, serverDelay after the accept
	hangUp = "hang up" // closes each connection at once
	silent = "silent"  // reads and never answers
)

// env is what the checks run against: a DNS server for the zone
// probe.test (api answers 127.0.0.1, silent never answers), a CA, a port
// that refuses and one that never answers, and protocol servers started on
// first use, all on 127.0.0.1.
type env struct {
	dir     string
	dns     *lab.DNSServer
	cert    tls.Certificate
	hostKey ssh.Signer // the SSH server's
	refused *lab.RefusedPort
	// silent is a port that answers no SYN: a connect hangs.
	silent *lab.SilentTCP
	// refusedUDP is a UDP port nothing reads, closed: the kernel answers
	// port unreachable. silentUDP is one a socket holds and never reads.
	refusedUDP netip.AddrPort
	silentUDP  net.PacketConn

	mu      sync.Mutex
	servers map[[2]string]*server
}

func startEnv() (e *env, err error) {
	e = &env{servers: map[[2]string]*server{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "probe-check-"); err != nil {
		return e, err
	}
	ca, err := lab.NewCA("probe plugins check CA")
	if err != nil {
		return e, err
	}
	if err := ca.WritePEM(e.caFile()); err != nil {
		return e, err
	}
	now := time.Now()
	if e.cert, err = ca.Issue([]string{"api.probe.test", "*.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil {
		return e, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return e, err
	}
	if e.hostKey, err = ssh.NewSignerFromKey(key); err != nil {
		return e, err
	}
	if e.dns, err = lab.StartDNS("probe.test."); err != nil {
		return e, err
	}
	e.dns.AddAddr("api", netip.MustParseAddr("127.0.0.1"))
	e.dns.SetBehavior("silent", lab.DNSBehavior{Silent: true})
	if e.refused, err = lab.ReserveRefused(); err != nil {
		return e, err
	}
	if e.silent, err = lab.StartSilentTCP(netip.MustParseAddr("127.0.0.1")); err != nil {
		return e, err
	}
	if e.silentUDP, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		return e, err
	}
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return e, err
	}
	e.refusedUDP = closed.LocalAddr().(*net.UDPAddr).AddrPort()
	_ = closed.Close()
	return e, nil
}

func (e *env) caFile() string { return filepath.Join(e.dir, "ca.pem") }

func (e *env) vars() LabVars { return LabVars{DNS: e.dns.Addr, CAFile: e.caFile()} }

func (e *env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.servers {
		s.close()
	}
	if e.dns != nil {
		_ = e.dns.Close()
	}
	if e.silent != nil {
		_ = e.silent.Close()
	}
	if e.refused != nil {
		_ = e.refused.Close()
	}
	if e.silentUDP != nil {
		_ = e.silentUDP.Close()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// server returns the server of kind (a Server constant) that behaves so,
// starting it on first use.
func (e *env) server(kind, behaviour string) (*server, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := [2]string{kind, behaviour}
	if s := e.servers[k]; s != nil {
		return s, nil
	}
	s := &server{kind: kind, behaviour: behaviour, cert: e.cert, hostKey: e.hostKey, conns: map[io.Closer]time.Time{}}
	switch kind {
	case ServerHTTP3, ServerUDP:
		listen := s.listenQUIC
		if kind == ServerUDP {
			listen = s.listenUDP
		}
		if err := listen(); err != nil {
			return nil, fmt.Errorf("start the %s server: %w", kind, err)
		}
		e.servers[k] = s
		return s, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the %s server: %w", kind, err)
	}
	s.ln, s.addr = ln, ln.Addr().(*net.TCPAddr).AddrPort()
	if kind == ServerGRPC {
		s.startGRPC()
	}
	s.wg.Go(s.serve)
	e.servers[k] = s
	return s, nil
}

// server is a protocol server of the check. It counts the connections its
// peers have not closed yet.
type server struct {
	ln        net.Listener
	addr      netip.AddrPort // a TCP port, or for ServerHTTP3 and ServerUDP a UDP port
	kind      string
	behaviour string
	cert      tls.Certificate
	hostKey   ssh.Signer
	wg        sync.WaitGroup

	// udp is the socket of a ServerUDP that answers or is silent.
	udp net.PacketConn

	// grpc serves the connections of a ServerGRPC, handed through grpcConns.
	grpc      *grpc.Server
	grpcConns *chanListener
	// quic is the listener of a ServerHTTP3, h3 its HTTP/3 server.
	quic *quic.EarlyListener
	h3   *http3.Server

	mu         sync.Mutex
	conns      map[io.Closer]time.Time // when each was accepted
	accepts    int
	lastAccept time.Time
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		accepted := s.track(c)
		s.wg.Go(func() {
			defer s.untrack(c)
			s.handle(c, accepted)
		})
	}
}

// track counts c open and returns when it was accepted.
func (s *server) track(c io.Closer) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepts++
	s.lastAccept = time.Now()
	s.conns[c] = s.lastAccept
	return s.lastAccept
}

// untrack closes c and counts it closed.
func (s *server) untrack(c io.Closer) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handle serves one connection until the peer closes it.
func (s *server) handle(c net.Conn, accepted time.Time) {
	switch s.behaviour {
	case hangUp:
		return
	case silent:
		_, _ = io.Copy(io.Discard, c)
		return
	}
	time.Sleep(time.Until(accepted.Add(serverDelay)))
	switch s.kind {
	case ServerEcho:
		_, _ = io.Copy(c, c)
		return
	case ServerGreeting:
		if _, err := io.WriteString(c, "SSH-2.0-probe-check\r\n"); err != nil {
			return
		}
	case ServerTLS:
		s.serveTLS(c)
		return
	case ServerSMTP:
		s.serveSMTP(c)
		return
	case ServerSSH:
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(s.hostKey)
		conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return // the peer closed after the key exchange, as a probe does
		}
		s.wg.Go(func() { ssh.DiscardRequests(reqs) })
		for ch := range chans {
			_ = ch.Reject(ssh.Prohibited, "probe plugins check opens no channel")
		}
		_ = conn.Close()
		return
	case ServerHTTP:
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	case ServerGRPC:
		nc := &notifyConn{Conn: c, closed: make(chan struct{})}
		select {
		case s.grpcConns.conns <- nc:
		case <-s.grpcConns.done:
			return
		}
		<-nc.closed // the gRPC server closes it when the peer does
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

// serveTLS serves TLS with the check's certificate on c, reading what
// comes until the peer closes.
func (s *server) serveTLS(c net.Conn) {
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
	if err := tc.Handshake(); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, tc)
}

// serveSMTP speaks SMTP (RFC 5321, 3207) on c up to STARTTLS: a 220
// greeting, STARTTLS offered in the answer to EHLO, 220 to STARTTLS, and
// then TLS.
func (s *server) serveSMTP(c net.Conn) {
	tp := textproto.NewConn(c)
	if err := tp.PrintfLine("220 probe-check ESMTP"); err != nil {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if err = tp.PrintfLine("250-probe-check"); err == nil {
				err = tp.PrintfLine("250 STARTTLS")
			}
		case "HELO", "NOOP", "RSET":
			err = tp.PrintfLine("250 OK")
		case "STARTTLS":
			if err := tp.PrintfLine("220 Ready to start TLS"); err != nil {
				return
			}
			// The client sends nothing before this answer: tp buffered
			// nothing of the TLS handshake.
			s.serveTLS(c)
			return
		case "QUIT":
			_ = tp.PrintfLine("221 Bye")
			return
		default:
			err = tp.PrintfLine("502 Command not implemented")
		}
		if err != nil {
			return
		}
	}
}

// open returns how many connections the server holds that their peer has
// not closed.
func (s *server) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// waitOpen waits up to d for the peers to have closed all but n
// connections, and returns how many are still open.
func (s *server) waitOpen(d time.Duration, n int) int {
	deadline := time.Now().Add(d)
	for {
		open := s.open()
		if open <= n || time.Now().After(deadline) {
			return open
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accepted returns when the server last accepted a connection.
func (s *server) accepted() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAccept
}

// acceptCount returns how many connections the server accepted.
func (s *server) acceptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// waitAccepts waits up to d for the server to have accepted n connections
// (a QUIC server accepts one once the client's last handshake packet
// arrives, which may be after the client's dial returned) and reports
// whether it has.
func (s *server) waitAccepts(d time.Duration, n int) bool {
	deadline := time.Now().Add(d)
	for s.acceptCount() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (s *server) close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.grpc != nil {
		_ = s.grpcConns.Close()
		s.grpc.Stop()
	}
	if s.quic != nil {
		_ = s.quic.Close()
	}
	if s.h3 != nil {
		_ = s.h3.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// startGRPC starts the gRPC server of a ServerGRPC: grpc-go's own health
// service, every service SERVING. handle hands it the connections.
func (s *server) startGRPC() {
	s.grpcConns = &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: s.ln.Addr()}
	s.grpc = grpc.NewServer()
	healthpb.RegisterHealthServer(s.grpc, health.NewServer())
	s.wg.Go(func() { _ = s.grpc.Serve(s.grpcConns) })
}

// chanListener is a net.Listener whose connections are handed to it.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// notifyConn tells when it is closed.
type notifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *notifyConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// quicConn is a QUIC connection the server counts open until its peer
// closes it.
type quicConn struct{ c *quic.Conn }

func (q quicConn) Close() error { return q.c.CloseWithError(0, "") }

// listenQUIC starts a ServerHTTP3: QUIC on a UDP port, HTTP/3 (200 "ok"
// for every request, serverDelay after the connection's accept) when it
// answers; a connection closed at its first request stream when it hangs
// up; a connection whose requests are never read when silent.
func (s *server) listenQUIC() error {
	tc := http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{s.cert}})
	// Early: it accepts a connection once it has sent its handshake
	// flight, before the client can close it. A client that closes at once
	// after its handshake, as a QUIC dialer does, would race quic-go's
	// accept of a completed handshake, which drops a connection closed
	// before it was queued.
	ln, err := quic.ListenAddrEarly("127.0.0.1:0", tc, &quic.Config{})
	if err != nil {
		return err
	}
	s.quic, s.addr = ln, ln.Addr().(*net.UDPAddr).AddrPort()
	s.h3 = &http3.Server{ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
		s.mu.Lock()
		defer s.mu.Unlock()
		return context.WithValue(ctx, acceptedKey{}, s.conns[quicConn{c}])
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if at, ok := r.Context().Value(acceptedKey{}).(time.Time); ok {
			time.Sleep(time.Until(at.Add(serverDelay)))
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			qc := quicConn{c}
			s.track(qc)
			s.wg.Go(func() {
				defer s.untrack(qc)
				switch s.behaviour {
				case hangUp:
					if _, err := c.AcceptStream(c.Context()); err == nil {
						_ = c.CloseWithError(0, "hang up")
					}
				case silent:
				default:
					_ = s.h3.ServeQUICConn(c)
				}
				<-c.Context().Done()
			})
		}
	})
	return nil
}

// acceptedKey is the context key of a request's connection's accept time.
type acceptedKey struct{}

// listenUDP starts a ServerUDP on a UDP port of 127.0.0.1: it sends each
// datagram back serverDelay after it arrived when it answers, reads them
// and never answers when silent, and when it hangs up the port is closed:
// the kernel answers each datagram with an ICMP port unreachable. UDP has
// no connection: the server counts none open, and a datagram's arrival is
// its accept.
func (s *server) listenUDP() error {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if s.behaviour == hangUp {
		return pc.Close()
	}
	s.udp = pc
	s.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepts++
			s.lastAccept = time.Now()
			at := s.lastAccept
			s.mu.Unlock()
			if s.behaviour == silent {
				continue
			}
			msg := append([]byte(nil), buf[:n]...)
			s.wg.Go(func() {
				time.Sleep(time.Until(at.Add(serverDelay)))
				_, _ = pc.WriteTo(msg, from)
			})
		}
	})
	return nil
}
