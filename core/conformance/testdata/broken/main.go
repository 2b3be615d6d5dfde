// Command broken is a test plugin binary for core/conformance: its plugin
// "echo" serves a handshake that writes a line and reads it back, a TCP
// dialer, and a resolver that answers api.probe.test with 127.0.0.1, never
// answers silent.probe.test (until the deadline), and fails any other name
// as dns.nxdomain. Its first argument chooses one way to break the
// contract, each of which `probe plugins check` must catch with the right
// line:
//
//	ok       none: every check passes
//	liar     the handshake reports a phase of 1 µs, whatever the exchange took
//	leaky    the handshake and the dialer keep a duplicate of every socket
//	deaf     the handshake and the resolver ignore the deadline and cancellation
//	panic    panics in every handshake
//	garbage  prints a line on stdout before go-plugin's handshake line
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sdk/serve"
	"github.com/zclconf/go-cty/cty"
)

func main() {
	mode := "ok"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if mode == "garbage" {
		fmt.Println("starting the echo plugin")
	}
	serve.Serve(&sdk.Plugin{
		Info: sdk.Info{Name: "echo", Version: "0.0.1", Description: "Writes a line and reads it back (" + mode + ")."},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "line", Type: cty.String, Default: cty.StringVal("ping"), Description: "The line to send."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) {
			line := sdk.String(cfg, "line")
			if line == "" {
				return nil, sdk.AttrErrorf("line", "Empty line", "line must not be empty.")
			}
			return &echo{mode: mode, line: line}, nil
		},
		NewDialer:   func(cty.Value) (sdk.Dialer, error) { return &dialer{mode: mode}, nil },
		NewResolver: func(cty.Value) (sdk.Resolver, error) { return resolver{mode: mode}, nil },
	})
}

type resolver struct{ mode string }

func (r resolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	switch req.Host {
	case "api.probe.test":
		return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Phases: []sdk.Phase{span.End(true, nil)}}, nil
	case "silent.probe.test":
		if r.mode == "deaf" {
			select {}
		}
		<-ctx.Done()
		return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseResolve, Class: sdk.ContextClass(ctx, sdk.ClassDNSTimeout), Message: "no answer"}}, nil
	}
	return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, nil)},
		Failure: &sdk.Failure{Phase: sdk.PhaseResolve, Class: sdk.ClassDNSNXDomain, Message: req.Host + " does not exist"}}, nil
}

type dialer struct {
	mode string

	mu   sync.Mutex
	kept []*os.File // leaky's duplicates
}

func (d *dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	resp := sdk.DialTCP(ctx, time.Now(), req.Address, nil)
	if d.mode == "leaky" && resp.Conn != nil {
		if f, err := resp.Conn.(*net.TCPConn).File(); err == nil {
			d.mu.Lock()
			d.kept = append(d.kept, f)
			d.mu.Unlock()
		}
	}
	return resp, nil
}

type echo struct {
	mode string
	line string

	mu   sync.Mutex
	kept []*os.File // leaky's duplicates
}

func (e *echo) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	switch e.mode {
	case "panic":
		panic("the echo handshake broke")
	case "leaky":
		if tc, ok := req.Conn.(*net.TCPConn); ok {
			if f, err := tc.File(); err == nil {
				e.mu.Lock()
				e.kept = append(e.kept, f)
				e.mu.Unlock()
			}
		}
	}
	if e.mode != "deaf" {
		if d, ok := ctx.Deadline(); ok {
			_ = req.Conn.SetDeadline(d)
		}
		stop := context.AfterFunc(ctx, func() { _ = req.Conn.SetDeadline(time.Now()) })
		defer stop()
	}
	err := e.exchange(req.Conn)
	p := span.End(err == nil, nil)
	if e.mode == "liar" {
		p.Duration = time.Microsecond
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{p}}
	if err != nil {
		class := sdk.Class("echo.closed")
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			class = "echo.timeout"
		}
		if c := sdk.ContextClass(ctx, "echo.timeout"); c != "" {
			class = c
		}
		resp.Failure = &sdk.Failure{Class: class, Message: err.Error()}
	}
	return resp, nil
}

// exchange writes the line and reads it back.
func (e *echo) exchange(c net.Conn) error {
	if _, err := fmt.Fprintf(c, "%s\n", e.line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != e.line+"\n" {
		return fmt.Errorf("read %q back, want %q", got, e.line)
	}
	return nil
}

var (
	_ sdk.Handshaker = (*echo)(nil)
	_ sdk.Dialer     = (*dialer)(nil)
	_ sdk.Resolver   = resolver{}
)
