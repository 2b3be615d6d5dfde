package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// margin is how much later than its delay a delayed answer may come on a busy machine.
const margin = 40 * time.Millisecond

func startLab(t *testing.T) *Lab {
	t.Helper()
	l, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// answer is what a test compares of a DNS response.
type answer struct {
	Rcode     string
	Addrs     []string
	Truncated bool
}

// exchange sends one query for name and type to addr over network and returns the answer and how long it took.
func exchange(t *testing.T, network, addr, name string, qtype uint16, timeout time.Duration) (answer, time.Duration, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	start := time.Now()
	r, _, err := c.Exchange(m, addr)
	took := time.Since(start)
	if err != nil {
		return answer{}, took, err
	}
	a := answer{Rcode: dns.RcodeToString[r.Rcode], Truncated: r.Truncated}
	for _, rr := range r.Answer {
		if rr.Header().Ttl != ttl {
			t.Errorf("%s TTL = %d, want %d", rr.Header().Name, rr.Header().Ttl, ttl)
		}
		switch rr := rr.(type) {
		case *dns.A:
			a.Addrs = append(a.Addrs, rr.A.String())
		case *dns.AAAA:
			a.Addrs = append(a.Addrs, rr.AAAA.String())
		}
	}
	return a, took, nil
}

func TestLabDNS(t *testing.T) {
	l := startLab(t)
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		want     answer
		minDelay time.Duration
	}{
		{"A", "api.probe.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.1"}}, 0},
		{"case insensitive", "API.Probe.TEST.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.1"}}, 0},
		{"no AAAA for v4 name", "api.probe.test.", dns.TypeAAAA, answer{Rcode: "NOERROR"}, 0},
		{"AAAA", "v6.probe.test.", dns.TypeAAAA, answer{Rcode: "NOERROR", Addrs: []string{"::1"}}, 0},
		{"no A for v6 name", "v6.probe.test.", dns.TypeA, answer{Rcode: "NOERROR"}, 0},
		{"tls names", "untrusted.probe.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.1"}}, 0},
		{"apex", "probe.test.", dns.TypeA, answer{Rcode: "NOERROR"}, 0},
		{"NXDOMAIN", "nope.probe.test.", dns.TypeA, answer{Rcode: "NXDOMAIN"}, 0},
		{"SERVFAIL", "servfail.probe.test.", dns.TypeA, answer{Rcode: "SERVFAIL"}, 0},
		{"REFUSED", "refused.probe.test.", dns.TypeA, answer{Rcode: "REFUSED"}, 0},
		{"outside zone", "example.com.", dns.TypeA, answer{Rcode: "REFUSED"}, 0},
		{"slow", "slow.probe.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.1"}}, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				got, took, err := exchange(t, network, l.DNS.Addr, tt.qname, tt.qtype, 2*time.Second)
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				if took < tt.minDelay || took > tt.minDelay+margin {
					t.Errorf("answer took %v, want %v to %v", took, tt.minDelay, tt.minDelay+margin)
				}
			})
		}
	}
	t.Run("silent", func(t *testing.T) {
		_, took, err := exchange(t, "udp", l.DNS.Addr, "silent.probe.test.", dns.TypeA, 100*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("exchange error = %v, want a timeout", err)
		}
		if took < 100*time.Millisecond {
			t.Errorf("timed out after %v, want >= 100ms", took)
		}
	})
}

func TestDNSBehaviors(t *testing.T) {
	s, err := StartDNS("Lab.Test")
	if err != nil {
		t.Fatalf("StartDNS: %v", err)
	}
	defer s.Close()
	s.AddAddr("big", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"))
	s.AddAddr("mapped.lab.test.", netip.MustParseAddr("::ffff:127.0.0.4"))
	s.AddAddr("Trunc", netip.MustParseAddr("127.0.0.5"))
	s.SetBehavior("trunc", DNSBehavior{Truncate: true})
	s.SetBehavior("bad", DNSBehavior{Malformed: true})
	s.SetBehavior("empty", DNSBehavior{})

	tests := []struct {
		name    string
		network string
		qname   string
		want    answer
		wantErr bool
	}{
		{"several addresses", "udp", "big.lab.test.", answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.2", "127.0.0.3"}}, false},
		{"v4-mapped is A", "udp", "mapped.lab.test.", answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.4"}}, false},
		{"truncated over UDP", "udp", "trunc.lab.test.", answer{Rcode: "NOERROR", Truncated: true}, false},
		{"full over TCP", "tcp", "trunc.lab.test.", answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.5"}}, false},
		{"behavior makes a name exist", "udp", "empty.lab.test.", answer{Rcode: "NOERROR"}, false},
		{"malformed over UDP", "udp", "bad.lab.test.", answer{}, true},
		{"malformed over TCP", "tcp", "bad.lab.test.", answer{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := exchange(t, tt.network, s.Addr, tt.qname, dns.TypeA, 2*time.Second)
			if tt.wantErr {
				var ne net.Error
				if err == nil || errors.As(err, &ne) {
					t.Fatalf("exchange error = %v, want an unpack error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	if got, want := s.Queries(), int64(len(tests)); got != want {
		t.Errorf("Queries() = %d, want %d", got, want)
	}

	t.Run("default behavior", func(t *testing.T) {
		s.SetBehavior("*", DNSBehavior{Rcode: dns.RcodeServerFailure})
		for name, want := range map[string]string{"other.lab.test.": "SERVFAIL", "big.lab.test.": "SERVFAIL", "empty.lab.test.": "NOERROR"} {
			got, _, err := exchange(t, "udp", s.Addr, name, dns.TypeA, 2*time.Second)
			if err != nil {
				t.Fatalf("exchange %s: %v", name, err)
			}
			if got.Rcode != want {
				t.Errorf("%s rcode = %s, want %s", name, got.Rcode, want)
			}
		}
	})

	t.Run("delay does not block other queries", func(t *testing.T) {
		s.SetBehavior("slow", DNSBehavior{Delay: 300 * time.Millisecond})
		done := make(chan struct{})
		go func() {
			defer close(done)
			exchange(t, "udp", s.Addr, "slow.lab.test.", dns.TypeA, 2*time.Second)
		}()
		time.Sleep(20 * time.Millisecond)
		if _, took, err := exchange(t, "udp", s.Addr, "empty.lab.test.", dns.TypeA, 2*time.Second); err != nil || took > margin {
			t.Errorf("query beside a delayed one: took %v, err %v; want < %v", took, err, margin)
		}
		<-done
	})
}

func TestDNSCloseAbandonsDelayedAnswers(t *testing.T) {
	s, err := StartDNS("lab.test.")
	if err != nil {
		t.Fatalf("StartDNS: %v", err)
	}
	s.SetBehavior("*", DNSBehavior{Delay: 10 * time.Second})
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("x.lab.test.", dns.TypeA)
	var wg sync.WaitGroup
	wg.Go(func() { c.Exchange(m, s.Addr) })
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with a query waiting, want it to abandon the wait", took)
	}
	wg.Wait()
}

func TestLabTLS(t *testing.T) {
	l := startLab(t)
	pem, err := os.ReadFile(l.CAFile)
	if err != nil {
		t.Fatalf("read CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", l.CAFile)
	}
	if fi, err := os.Stat(l.CAFile); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("CA file mode = %v (err %v), want 0644", fi.Mode(), err)
	}

	tests := []struct {
		name       string
		server     *TLSServer
		serverName string
		check      func(error) bool // nil: the handshake must succeed
		minDelay   time.Duration
	}{
		{"TLS", l.TLS, "api.probe.test", nil, 0},
		{"TLS wildcard", l.TLS, "slowtls.probe.test", nil, 0},
		{"TLS by IP", l.TLS, "127.0.0.1", nil, 0},
		{"SlowTLS", l.SlowTLS, "slowtls.probe.test", nil, 40 * time.Millisecond},
		{"Expired", l.Expired, "expired.probe.test", func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}, 0},
		{"WrongName", l.WrongName, "wrongname.probe.test", func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}, 0},
		{"Untrusted", l.Untrusted, "untrusted.probe.test", func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}, 0},
		{"Reset", l.Reset, "reset.probe.test", func(err error) bool {
			return errors.Is(err, syscall.ECONNRESET)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", tt.server.Addr.String())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer raw.Close()
			conn := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: tt.serverName})
			start := time.Now()
			err = conn.Handshake()
			took := time.Since(start)
			if tt.check != nil {
				if err == nil || !tt.check(err) {
					t.Fatalf("handshake error = %v (%T), want the %s failure", err, errors.Unwrap(err), tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if took < tt.minDelay || took > tt.minDelay+margin {
				t.Errorf("handshake took %v, want %v to %v", took, tt.minDelay, tt.minDelay+margin)
			}
		})
	}

	t.Run("HTTP", func(t *testing.T) {
		for _, proto := range []string{"HTTP/2.0", "HTTP/1.1"} {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: l.CA.Pool()},
				ForceAttemptHTTP2: proto == "HTTP/2.0",
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, l.TLS.Addr.String())
				},
			}
			resp, err := (&http.Client{Transport: tr}).Get("https://api.probe.test/")
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "ok\n" || resp.Proto != proto {
				t.Errorf("got %s %d %q, want %s 200 %q", resp.Proto, resp.StatusCode, body, proto, "ok\n")
			}
		}
	})
}

func TestTCP(t *testing.T) {
	l := startLab(t)
	banner, err := StartTCP("hello\r\n")
	if err != nil {
		t.Fatalf("StartTCP: %v", err)
	}
	defer banner.Close()

	tests := []struct {
		name string
		addr netip.AddrPort
		want string
	}{
		{"no banner", l.TCP.Addr, ""},
		{"banner", banner.Addr, "hello\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tt.addr.String())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			buf := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := io.ReadAtLeast(c, buf, len(tt.want)+1)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("read = %v, want a timeout: the server holds the connection open", err)
			}
			if got := string(buf[:n]); got != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("Refused", func(t *testing.T) {
		c, err := net.Dial("tcp", l.Refused.String())
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s = %v, want ECONNREFUSED", l.Refused, err)
		}
	})
}

func TestVars(t *testing.T) {
	l := startLab(t)
	vars := l.Vars()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range vars {
			if !yield(k) {
				return
			}
		}
	})
	want := []string{"ca_file", "dns_server", "expired_port", "refused_port", "reset_port", "slow_tls_port",
		"tcp_port", "tls_port", "untrusted_port", "wrongname_port"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Vars keys (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{
		"dns_server":   l.DNS.Addr,
		"ca_file":      l.CAFile,
		"tls_port":     strconv.Itoa(int(l.TLS.Addr.Port())),
		"refused_port": strconv.Itoa(int(l.Refused.Port())),
	} {
		if vars[k] != v {
			t.Errorf("Vars()[%q] = %q, want %q", k, vars[k], v)
		}
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	l, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	// Leave work in flight everywhere: a delayed DNS query, a held TCP connection, a delayed handshake.
	var wg sync.WaitGroup
	wg.Go(func() { exchange(t, "udp", l.DNS.Addr, "slow.probe.test.", dns.TypeA, 200*time.Millisecond) })
	wg.Go(func() { exchange(t, "tcp", l.DNS.Addr, "slow.probe.test.", dns.TypeA, 200*time.Millisecond) })
	var conns []net.Conn
	for _, a := range []netip.AddrPort{l.TCP.Addr, l.SlowTLS.Addr, l.TLS.Addr} {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		conns = append(conns, c)
	}
	wg.Go(func() {
		tls.Client(conns[1], &tls.Config{RootCAs: l.CA.Pool(), ServerName: "api.probe.test"}).Handshake()
	})
	time.Sleep(10 * time.Millisecond)

	dir := l.Dir
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir %s after Close: %v, want it removed", dir, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestClosePartial(t *testing.T) {
	dir := t.TempDir() + "/lab"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tcp, err := StartTCP("")
	if err != nil {
		t.Fatalf("StartTCP: %v", err)
	}
	if err := (&Lab{Dir: dir, TCP: tcp}).Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir after Close: %v, want it removed", err)
	}
	if err := new(Lab).Close(); err != nil {
		t.Errorf("Close of an empty lab: %v", err)
	}
}
