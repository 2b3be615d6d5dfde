package pluginhost_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// peer is a TLS server for one connection that reports when the client
// closed it.
type peer struct {
	addr   netip.AddrPort
	closed chan error // io.EOF when the client closed the connection
}

func startPeer(t *testing.T) *peer {
	t.Helper()
	cert, err := testLab.CA.Issue([]string{"peer.probe.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &peer{addr: netip.MustParseAddrPort(ln.Addr().String()), closed: make(chan error, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			p.closed <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		p.closed <- cmp.Or(err, io.EOF)
	}()
	return p
}

// waitClosed waits up to d for the client to close the connection and
// reports whether it did.
func (p *peer) waitClosed(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case err := <-p.closed:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("peer: %v, want the client's close", err)
		}
		return true
	case <-time.After(d):
		return false
	}
}

// TestSocketStaysInPlugin checks how the socket travels: a dialer out of
// process keeps it when the handshake after it runs in the same process (no
// handoff), sends it when the handshake runs in probe's; a handshake told it
// is the last closes the connection in the plugin (no Release call), and
// one that is not holds it until probe closes it.
func TestSocketStaysInPlugin(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	tlsCfg := map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile), "server_name": cty.StringVal("peer.probe.test")}
	newDialer := func(p *sdk.Plugin) sdk.Dialer {
		d, err := p.NewDialer(comp{}.config(t, p, sdk.KindDialer))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	newTLS := func(p *sdk.Plugin) sdk.Handshaker {
		h, err := p.NewHandshaker(comp{"tls", tlsCfg}.config(t, p, sdk.KindHandshake))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	dialer := newDialer(remote["dial-tcp"])
	remoteTLS, localTLS := newTLS(remote["tls"]), newTLS(builtins.Plugins()["tls"])

	for _, tc := range []struct {
		name       string
		next       sdk.Handshaker
		last       bool
		handedOff  bool // the dialed socket came into this process
		closedByHS bool // the handshake closed the connection
	}{
		{"handshake in the plugin", remoteTLS, false, false, false},
		{"last handshake in the plugin", remoteTLS, true, false, true},
		{"handshake in process", localTLS, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPeer(t)
			d, err := dialer.(engine.HoldingDialer).DialBefore(t.Context(), &sdk.DialRequest{Address: p.addr, Host: "peer.probe.test"}, tc.next)
			if err != nil || d.Failure != nil {
				t.Fatalf("dial: %v %+v", err, d.Failure)
			}
			if _, isSocket := d.Conn.(syscall.Conn); isSocket != tc.handedOff {
				t.Errorf("dialed connection %T: a socket in this process is %v, want %v", d.Conn, isSocket, tc.handedOff)
			}
			hreq := &sdk.HandshakeRequest{Conn: d.Conn, Host: "peer.probe.test", Address: p.addr}
			handshake := tc.next.Handshake
			if tc.last {
				handshake = tc.next.(engine.ClosingHandshaker).HandshakeLast
			}
			h, err := handshake(t.Context(), hreq)
			if err != nil || h.Failure != nil {
				t.Fatalf("handshake: %v %+v", err, h.Failure)
			}
			conn := d.Conn
			if h.Conn != nil {
				conn = h.Conn
			}
			if closed := p.waitClosed(t, 300*time.Millisecond); closed != tc.closedByHS {
				t.Fatalf("connection closed by the handshake: %v, want %v", closed, tc.closedByHS)
			}
			if tc.closedByHS {
				if h.Conn != nil {
					t.Errorf("the last handshake returned a connection (%T), want none", h.Conn)
				}
				_ = d.Conn.Close()
				return
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if !p.waitClosed(t, 5*time.Second) {
				t.Fatal("the connection stayed open after probe closed it")
			}
		})
	}
}

// TestSequence runs a whole attempt in one call to the plugin process
// serving its resolver, dialer and handshake: the three answers come back
// with their phases in order, each starting after the previous ended, and
// the connection is closed in the plugin. With the handshake in process the
// resolver declines, and the engine calls the components one by one.
func TestSequence(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	tlsCfg := map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile), "server_name": cty.StringVal("peer.probe.test")}
	rp, dp := remote["dns-system"], remote["dial-tcp"]
	r, err := rp.NewResolver(comp{}.config(t, rp, sdk.KindResolver))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dp.NewDialer(comp{}.config(t, dp, sdk.KindDialer))
	if err != nil {
		t.Fatal(err)
	}
	newTLS := func(p *sdk.Plugin) sdk.Handshaker {
		h, err := p.NewHandshaker(comp{"tls", tlsCfg}.config(t, p, sdk.KindHandshake))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	seq, ok := r.(engine.Sequencer)
	if !ok {
		t.Fatalf("a resolver out of process (%T) is no engine.Sequencer", r)
	}

	p := startPeer(t)
	req := &engine.SequenceRequest{Host: p.addr.Addr().String(), Port: p.addr.Port(), Dialer: d,
		Handshakers: []sdk.Handshaker{newTLS(remote["tls"])}}
	resp, ran, err := seq.Sequence(t.Context(), req)
	if err != nil || !ran {
		t.Fatalf("Sequence = %v, %v; want it run", ran, err)
	}
	if resp.Resolve.Failure != nil || resp.Dial == nil || resp.Dial.Failure != nil || len(resp.Handshakes) != 1 || resp.Handshakes[0].Failure != nil {
		t.Fatalf("Sequence answered %+v", resp)
	}
	var end time.Duration
	for i, phases := range [][]sdk.Phase{resp.Resolve.Phases, resp.Dial.Phases, resp.Handshakes[0].Phases} {
		if len(phases) != 1 || !phases[0].OK {
			t.Fatalf("stage %d: phases %+v, want one that succeeded", i, phases)
		}
		if ph := phases[0]; ph.Start < end || ph.Duration <= 0 {
			t.Errorf("stage %d: phase %s starts at %v, lasts %v; the previous ended at %v", i, ph.Name, ph.Start, ph.Duration, end)
		} else {
			end = ph.Start + ph.Duration
		}
	}
	if got := resp.Resolve.Addresses; len(got) != 1 || got[0] != p.addr.Addr() {
		t.Errorf("addresses %v, want %v", got, p.addr.Addr())
	}
	if !p.waitClosed(t, 5*time.Second) {
		t.Error("the plugin did not close the connection after the sequence")
	}

	req.Handshakers = []sdk.Handshaker{newTLS(builtins.Plugins()["tls"])}
	if _, ran, err := seq.Sequence(t.Context(), req); ran || err != nil {
		t.Errorf("Sequence with the handshake in process = %v, %v; want it declined", ran, err)
	}
}

// countingSequencer counts the attempts a resolver ran in one call.
type countingSequencer struct {
	sdk.Resolver
	calls atomic.Int32
}

func (c *countingSequencer) Sequence(ctx context.Context, req *engine.SequenceRequest) (*engine.SequenceResponse, bool, error) {
	c.calls.Add(1)
	return c.Resolver.(engine.Sequencer).Sequence(ctx, req)
}

// TestEngineSequences checks when the engine runs an attempt in one call:
// with every component in one plugin process and the first address dialed,
// yes; when a Keep hook may take the connection, or Happy Eyeballs races
// the addresses, no. The attempts succeed either way.
func TestEngineSequences(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	p := spec{resolver: comp{plugin: "dns-system"}, handshakes: []comp{tls}}.build(t, placements[1], remote)
	counted := &countingSequencer{Resolver: p.Resolvers[0].Component}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "system", Plugin: "dns-system", Component: counted}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Resolvers = []engine.Route{route}
	keep := func(*engine.Target, *engine.Attempt, net.Conn) bool { return false }
	for _, tc := range []struct {
		name   string
		policy engine.AddressPolicy
		keep   func(*engine.Target, *engine.Attempt, net.Conn) bool
		calls  int32
	}{
		{"first address", engine.AddressFirst, nil, 1},
		{"a keep hook", engine.AddressFirst, keep, 0},
		{"happy eyeballs", engine.AddressHappyEyeballs, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counted.calls.Store(0)
			pl := *p
			pl.AddressPolicy = tc.policy
			eng := engine.New(engine.Options{Timeout: 5 * time.Second, Keep: tc.keep})
			a := eng.Probe(t.Context(), &engine.Target{Name: "api", Host: "127.0.0.1", Port: testLab.TLS.Addr.Port(), Pipeline: &pl})
			checkAttempt(t, a)
			if !a.OK || len(a.Phases) != 3 {
				t.Fatalf("attempt ok %v, phases %+v, failure %+v", a.OK, a.Phases, a.Failure)
			}
			if got := counted.calls.Load(); got != tc.calls {
				t.Errorf("%d attempts in one call, want %d", got, tc.calls)
			}
		})
	}
}
