package conformance

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/probe-dev/probe/internal/lab"
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
	refused netip.AddrPort
	// silent is a port that answers no SYN: a connect hangs.
	silent *lab.SilentTCP

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
	if e.dns, err = lab.StartDNS("probe.test."); err != nil {
		return e, err
	}
	e.dns.AddAddr("api", netip.MustParseAddr("127.0.0.1"))
	e.dns.SetBehavior("silent", lab.DNSBehavior{Silent: true})
	if e.refused, err = lab.RefusedAddr(); err != nil {
		return e, err
	}
	if e.silent, err = lab.StartSilentTCP(netip.MustParseAddr("127.0.0.1")); err != nil {
		return e, err
	}
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the %s server: %w", kind, err)
	}
	s := &server{ln: ln, kind: kind, behaviour: behaviour, cert: e.cert, conns: map[net.Conn]bool{},
		addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	s.wg.Go(s.serve)
	e.servers[k] = s
	return s, nil
}

// server is a protocol server of the check. It counts the connections its
// peers have not closed yet.
type server struct {
	ln        net.Listener
	addr      netip.AddrPort
	kind      string
	behaviour string
	cert      tls.Certificate
	wg        sync.WaitGroup

	mu         sync.Mutex
	conns      map[net.Conn]bool
	lastAccept time.Time
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.lastAccept = time.Now()
		accepted := s.lastAccept
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				_ = c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(c, accepted)
		})
	}
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
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
		if err := tc.Handshake(); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, tc)
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
	}
	_, _ = io.Copy(io.Discard, c)
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

func (s *server) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
