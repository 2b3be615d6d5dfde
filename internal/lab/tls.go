package lab

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// TLSServer is a TLS server (on 127.0.0.1 unless TLSOptions.Addr says otherwise) that serves HTTP/1.1 (and h2 via ALPN) after the handshake,
// answering every request 200 "ok\n".
type TLSServer struct {
	Addr netip.AddrPort

	http  *http.Server  // nil with Reset
	reset *acceptor     // nil without Reset
	done  chan struct{} // closed by Close, ends delays
	wg    sync.WaitGroup
	err   error // what Serve returned, read after wg.Wait
}

// TLSOptions configures a TLSServer.
type TLSOptions struct {
	Cert  tls.Certificate
	Delay time.Duration // hold the server's first flight (after reading the ClientHello) this long; default 0
	Reset bool          // read the ClientHello, then reset the connection (SO_LINGER 0) instead of answering
	// KeyExchanges are the only groups the server accepts; default crypto/tls's.
	KeyExchanges []tls.CurveID
	// Addr is the address to listen on; default 127.0.0.1 on a free port (port 0 picks one). The delay link
	// (internal/lab/netlab) listens on its far side's address.
	Addr netip.AddrPort
}

// StartTLS starts a TLS server on opts.Addr, by default a free 127.0.0.1 port.
func StartTLS(opts TLSOptions) (*TLSServer, error) {
	addr := "127.0.0.1:0"
	if opts.Addr.IsValid() {
		addr = opts.Addr.String()
	}
	if opts.Reset {
		a, err := listen(addr, resetAfterRead)
		if err != nil {
			return nil, err
		}
		return &TLSServer{Addr: a.addr, reset: a}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen TLS: %w", err)
	}
	s := &TLSServer{
		Addr: ln.Addr().(*net.TCPAddr).AddrPort(),
		done: make(chan struct{}),
		http: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "ok\n")
			}),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{opts.Cert}, NextProtos: []string{"h2", "http/1.1"},
				CurvePreferences: opts.KeyExchanges},
			ErrorLog: log.New(io.Discard, "", 0), // clients failing verification on purpose are the point
		},
	}
	if opts.Delay > 0 {
		ln = &delayListener{Listener: ln, delay: opts.Delay, done: s.done}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("serve TLS on %s: %w", s.Addr, err)
		}
	}()
	return s, nil
}

// Close stops the server, closes its connections and waits for its accept loop.
func (s *TLSServer) Close() error {
	if s.reset != nil {
		return s.reset.close()
	}
	close(s.done)
	err := s.http.Close()
	s.wg.Wait()
	return errors.Join(err, s.err)
}

// resetAfterRead reads once (the ClientHello) and makes the coming close send a RST.
func resetAfterRead(c net.Conn) {
	c.Read(make([]byte, 4096))
	c.(*net.TCPConn).SetLinger(0)
}

// delayListener hands out connections whose first Write waits delay.
type delayListener struct {
	net.Listener
	delay time.Duration
	done  <-chan struct{}
}

func (l *delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &delayConn{Conn: c, delay: l.delay, done: l.done}, nil
}

// delayConn holds its first Write for delay; the server writes only after reading the ClientHello.
type delayConn struct {
	net.Conn
	delay time.Duration
	done  <-chan struct{}
	once  sync.Once
}

func (c *delayConn) Write(b []byte) (int, error) {
	var closed bool
	c.once.Do(func() {
		t := time.NewTimer(c.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.done:
			closed = true
		}
	})
	if closed {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// TCPServer accepts connections on 127.0.0.1 and holds them open until the client closes (or writes Banner first).
type TCPServer struct {
	Addr netip.AddrPort

	acceptor *acceptor
}

// StartTCP starts a TCP server on a free 127.0.0.1 port that writes banner, if not empty, to each connection.
func StartTCP(banner string) (*TCPServer, error) {
	return StartTCPFunc(func(c net.Conn) {
		if banner != "" {
			if _, err := io.WriteString(c, banner); err != nil {
				return
			}
		}
		io.Copy(io.Discard, c)
	})
}

// StartTCPFunc starts a TCP server on a free 127.0.0.1 port that runs serve on each connection, in a
// goroutine of its own, and closes the connection when serve returns.
func StartTCPFunc(serve func(net.Conn)) (*TCPServer, error) {
	a, err := listen("127.0.0.1:0", serve)
	if err != nil {
		return nil, err
	}
	return &TCPServer{Addr: a.addr, acceptor: a}, nil
}

// StartLineEcho starts a TCP server on a free 127.0.0.1 port that writes greeting, if not empty, to
// each connection, then answers each line with "echo " and the line.
func StartLineEcho(greeting string) (*TCPServer, error) {
	return StartTCPFunc(func(c net.Conn) {
		if greeting != "" {
			if _, err := io.WriteString(c, greeting); err != nil {
				return
			}
		}
		s := bufio.NewScanner(c)
		for s.Scan() {
			if _, err := io.WriteString(c, "echo "+s.Text()+"\n"); err != nil {
				return
			}
		}
	})
}

// Close stops the server, closes its connections and waits for their goroutines.
func (s *TCPServer) Close() error { return s.acceptor.close() }

// FreeAddr returns a 127.0.0.1 address that was free a moment ago (bind a
// port, close it), for a server to listen on. Another socket may take it
// before: a test that needs a port where a connect is refused holds one
// (Refused).
func FreeAddr() (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := ln.Close(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("close %s: %w", addr, err)
	}
	return addr, nil
}

// acceptor runs serve on each connection accepted on a port, closing the connection after,
// and keeps track of them so close can end them all.
type acceptor struct {
	addr  netip.AddrPort
	ln    net.Listener
	serve func(net.Conn)
	wg    sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func listen(addr string, serve func(net.Conn)) (*acceptor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen TCP: %w", err)
	}
	a := &acceptor{addr: ln.Addr().(*net.TCPAddr).AddrPort(), ln: ln, serve: serve, conns: make(map[net.Conn]struct{})}
	a.wg.Add(1)
	go a.loop()
	return a, nil
}

func (a *acceptor) loop() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of file descriptors, most likely: back off as net/http does
			time.Sleep(5 * time.Millisecond)
			continue
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = struct{}{}
		a.wg.Add(1)
		a.mu.Unlock()
		go func() {
			defer a.wg.Done()
			a.serve(c)
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
			c.Close()
		}()
	}
}

func (a *acceptor) close() error {
	err := a.ln.Close()
	a.mu.Lock()
	a.closed = true
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	if err != nil {
		return fmt.Errorf("close %s: %w", a.addr, err)
	}
	return nil
}
