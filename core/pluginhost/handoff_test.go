package pluginhost_test

import (
	"cmp"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	dialtcp "github.com/probe-dev/probe/plugins/dial-tcp"
	tlshandshake "github.com/probe-dev/probe/plugins/tls"
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
		h, err := p.NewHandshaker(comp{tlshandshake.Name, tlsCfg}.config(t, p, sdk.KindHandshake))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	dialer := newDialer(remote[dialtcp.Name])
	remoteTLS, localTLS := newTLS(remote[tlshandshake.Name]), newTLS(tlshandshake.Plugin())

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
			d, err := dialer.Dial(t.Context(), &sdk.DialRequest{Address: p.addr, Host: "peer.probe.test", Next: tc.next})
			if err != nil || d.Failure != nil {
				t.Fatalf("dial: %v %+v", err, d.Failure)
			}
			if _, isSocket := d.Conn.(syscall.Conn); isSocket != tc.handedOff {
				t.Errorf("dialed connection %T: a socket in this process is %v, want %v", d.Conn, isSocket, tc.handedOff)
			}
			h, err := tc.next.Handshake(t.Context(), &sdk.HandshakeRequest{Conn: d.Conn, Host: "peer.probe.test", Address: p.addr, Last: tc.last})
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
