package grpchealth

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// healthServer starts the lab's gRPC health server, plain or over TLS
// with cert, until the test ends.
func healthServer(t *testing.T, cert *tls.Certificate) *lab.GRPCHealthServer {
	t.Helper()
	s, err := lab.StartGRPCHealth(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// silentServer accepts connections and never writes to them.
func silentServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// check dials addr, runs a TLS client handshake offering h2 when roots is
// not nil, and then the grpc-health handshake configured by values.
func check(t *testing.T, addr netip.AddrPort, roots *tlsRoots, values map[string]cty.Value, timeout time.Duration) (*sdk.HandshakeResponse, time.Duration) {
	t.Helper()
	cfg, err := Plugin().HandshakeSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var conn net.Conn
	conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if roots != nil {
		tc := tls.Client(conn, &tls.Config{ServerName: "api.probe.test", RootCAs: roots.ca.Pool(), NextProtos: []string{"h2"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			t.Fatal(err)
		}
		conn = tc
	}
	start := time.Now()
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: "api.probe.test", Address: addr})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one named %q", resp.Phases, Phase)
	}
	if resp.Conn != nil {
		t.Errorf("the handshake handed on a connection: %T", resp.Conn)
	}
	return resp, took
}

// tlsRoots is the test CA the TLS server's certificate is issued by.
type tlsRoots struct{ ca *lab.CA }

func TestHealth(t *testing.T) {
	ca, err := lab.NewCA("grpc-health test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := ca.Issue([]string{"api.probe.test"}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	servers := []struct {
		name  string
		srv   *lab.GRPCHealthServer
		roots *tlsRoots
	}{
		{"plain", healthServer(t, nil), nil},
		{"tls", healthServer(t, &cert), &tlsRoots{ca}},
	}
	for _, s := range servers {
		for _, tt := range []struct {
			service string
			class   sdk.Class
			attrs   map[string]any
		}{
			{"", "", map[string]any{"status": "SERVING", "code": "OK", "code_number": 0}},
			{"api", "", map[string]any{"status": "SERVING", "code": "OK", "code_number": 0}},
			{"batch", ClassNotServing, map[string]any{"status": "NOT_SERVING", "code": "OK", "code_number": 0}},
			{"nosuch", ClassStatus, map[string]any{"code": "NotFound", "code_number": 5}}, // grpc-go's health service: unknown service
		} {
			t.Run(s.name+" "+tt.service, func(t *testing.T) {
				before := s.srv.Accepted()
				resp, _ := check(t, s.srv.Addr, s.roots, map[string]cty.Value{"service": cty.StringVal(tt.service)}, 5*time.Second)
				if n := s.srv.Accepted() - before; n != 1 {
					t.Errorf("the server accepted %d connections, want 1: the check runs over the pipeline's", n)
				}
				ph := resp.Phases[0]
				var class sdk.Class
				if resp.Failure != nil {
					class = resp.Failure.Class
				}
				if class != tt.class || ph.OK != (tt.class == "") {
					t.Errorf("failure %+v, phase ok %v; want class %q", resp.Failure, ph.OK, tt.class)
				}
				want := map[string]any{"service": tt.service, "authority": "api.probe.test:" + strconv.Itoa(int(s.srv.Addr.Port()))}
				for k, v := range tt.attrs {
					want[k] = v
				}
				if diff := cmp.Diff(want, ph.Attrs); diff != "" {
					t.Errorf("attrs (-want +got):\n%s", diff)
				}
				if ph.Duration <= 0 || ph.Duration > 2*time.Second {
					t.Errorf("phase lasted %v", ph.Duration)
				}
			})
		}
	}
}

// TestNoHealthService checks a gRPC server without the health service: the
// call ends Unimplemented.
func TestNoHealthService(t *testing.T) {
	srv := grpc.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	addr := netip.MustParseAddrPort(ln.Addr().String())
	resp, _ := check(t, addr, nil, nil, 5*time.Second)
	if resp.Failure == nil || resp.Failure.Class != ClassStatus || resp.Phases[0].Attrs["code"] != "Unimplemented" {
		t.Errorf("failure %+v, attrs %v; want %s with code Unimplemented", resp.Failure, resp.Phases[0].Attrs, ClassStatus)
	}
}

// TestHostile checks servers that do not speak gRPC: an HTTP/1 server ends
// in grpc.protocol at once, a server that never answers in grpc.timeout at
// the handshake's timeout, never later.
func TestHostile(t *testing.T) {
	h1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(h1.Close)
	for _, tt := range []struct {
		name  string
		addr  netip.AddrPort
		class sdk.Class
		min   time.Duration
	}{
		{"http/1 server", netip.MustParseAddrPort(h1.Listener.Addr().String()), ClassProtocol, 0},
		{"silent server", silentServer(t), ClassTimeout, 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, took := check(t, tt.addr, nil, map[string]cty.Value{"timeout": cty.StringVal("300ms")}, 5*time.Second)
			if resp.Failure == nil || resp.Failure.Class != tt.class {
				t.Fatalf("failure %+v, want %s", resp.Failure, tt.class)
			}
			if took < tt.min || took > tt.min+time.Second {
				t.Errorf("took %v, want %v to %v", took, tt.min, tt.min+time.Second)
			}
			t.Logf("%s: %s", tt.class, resp.Failure.Message)
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		attr string
		v    cty.Value
	}{
		{"authority", cty.StringVal("api internal")},
		{"authority", cty.StringVal("a/b")},
		{"timeout", cty.StringVal("soon")},
	} {
		cfg, err := Plugin().HandshakeSchema.Config(map[string]cty.Value{tt.attr: tt.v})
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg)
		if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tt.attr {
			t.Errorf("%s = %#v: %v, want an attribute error on %s", tt.attr, tt.v, err, tt.attr)
		}
	}
}
