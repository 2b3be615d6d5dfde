package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// greeting is a plugin as an author writes it: one handshake that reads
// the line a server sends first and checks it against a regular expression
// (examples/plugins/banner is the same, served from a binary of its own).
func greeting() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{Name: "greeting", Version: "1.0.0", Description: "Reads a server's greeting line."},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "expect", Type: cty.String, Required: true, Description: "Regular expression the line must match."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) {
			re, err := regexp.Compile(sdk.String(cfg, "expect"))
			if err != nil {
				return nil, sdk.AttrErrorf("expect", "Invalid regular expression", "expect does not compile: %s.", err)
			}
			return greeter{re}, nil
		},
	}
}

type greeter struct{ expect *regexp.Regexp }

// Handshake measures the read as one phase and reports a line that does
// not match as a Failure: data, not a Go error.
func (g greeter) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if d, ok := ctx.Deadline(); ok {
		_ = req.Conn.SetReadDeadline(d)
	}
	span := sdk.StartSpan("", callAt) // a handshake's phase is named after its block
	line, err := bufio.NewReader(req.Conn).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	switch {
	case err != nil:
		return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Class: "greeting.closed", Message: err.Error()}}, nil
	case !g.expect.MatchString(line):
		return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(false, map[string]any{"line": line})},
			Failure: &sdk.Failure{Class: "greeting.mismatch", Message: fmt.Sprintf("%q does not match %s", line, g.expect)}}, nil
	}
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, map[string]any{"line": line})}}, nil
}

// greetingServer listens on loopback and greets every connection with
// line, until closed.
func greetingServer(line string) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(line + "\r\n"))
			_ = c.Close()
		}
	}()
	return ln
}

// A plugin's component is configured from its schema, as probe does from a
// pipeline file, and called over a connection sdk.DialTCP opened.
func Example() {
	srv := greetingServer("SSH-2.0-OpenSSH_9.2")
	defer srv.Close()
	ssh := srv.Addr().(*net.TCPAddr).AddrPort()
	p := greeting()

	cfg, err := p.HandshakeSchema.Config(map[string]cty.Value{"expect": cty.StringVal(`^SSH-2\.0-`)})
	if err != nil {
		panic(err)
	}
	h, err := p.NewHandshaker(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dial := sdk.DialTCP(ctx, time.Now(), ssh, nil)
	if dial.Failure != nil {
		panic(dial.Failure)
	}
	defer dial.Conn.Close()
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: dial.Conn, Host: "127.0.0.1", Address: ssh})
	if err != nil {
		panic(err)
	}
	fmt.Println(dial.Phases[0].Name, dial.Phases[0].OK)
	fmt.Println(resp.Phases[0].OK, resp.Phases[0].Attrs["line"], resp.Failure)

	// A bad value is an *sdk.AttrError, which probe shows on the
	// attribute's line.
	cfg, _ = p.HandshakeSchema.Config(map[string]cty.Value{"expect": cty.StringVal("(")})
	_, err = p.NewHandshaker(cfg)
	if ae, ok := sdk.AsAttrError(err); ok {
		fmt.Println(ae.Attr+":", ae.Summary)
	}
	// Output:
	// connect true
	// true SSH-2.0-OpenSSH_9.2 <nil>
	// expect: Invalid regular expression
}

// staticResolver answers 127.0.0.1 for every host.
type staticResolver struct{}

func (staticResolver) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// tcpDialer is a dialer built on sdk.DialTCP, dial-tcp's connect.
type tcpDialer struct{}

func (tcpDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return sdk.DialTCP(ctx, time.Now(), req.Address, nil), nil
}

// A Go program runs a plugin's components through the engine, as probe
// does with the components a pipeline file names: each attempt resolves,
// dials and runs the handshakes, and a probe that failed says in which
// phase, of what class.
func ExamplePlugin() {
	srv := greetingServer("220 smtp ready")
	defer srv.Close()
	p := greeting()
	cfg, err := p.Schema(sdk.KindHandshake).Config(map[string]cty.Value{"expect": cty.StringVal(`^SSH-`)})
	if err != nil {
		panic(err)
	}
	h, err := p.New(sdk.KindHandshake, cfg)
	if err != nil {
		panic(err)
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: staticResolver{}}, nil)
	if err != nil {
		panic(err)
	}
	pipeline := &engine.Pipeline{
		Name:       "ssh",
		Resolvers:  []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "tcp", Component: tcpDialer{}},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: "ssh", Plugin: p.Info.Name, Component: h.(sdk.Handshaker)}},
	}
	a := engine.New(engine.Options{Timeout: 2 * time.Second}).Probe(context.Background(),
		&engine.Target{Name: "mail", Host: "mail.test", Port: srv.Addr().(*net.TCPAddr).AddrPort().Port(), Pipeline: pipeline})
	for _, ph := range a.Phases {
		fmt.Println(ph.Name, ph.OK)
	}
	fmt.Println(a.Failure.Phase, a.Failure.Class)
	// Output:
	// resolve true
	// connect true
	// ssh false
	// ssh greeting.mismatch
}

// A getter reads an attribute as the type its schema gives it. A name the
// schema lacks is the plugin's mistake, not the user's: the getter panics,
// and the plugin's first test that constructs the component says where.
func ExampleString() {
	s := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "source", Type: cty.String},
		{Name: "timeout", Type: cty.String, Default: cty.StringVal("2s")},
	}}
	cfg, err := s.Config(map[string]cty.Value{"source": cty.StringVal("127.0.0.1")})
	if err != nil {
		panic(err)
	}
	timeout, err := sdk.Duration(cfg, "timeout")
	fmt.Println(sdk.String(cfg, "source"), timeout, err)
	defer func() { fmt.Println(recover()) }()
	sdk.String(cfg, "sourc")
	// Output:
	// 127.0.0.1 2s <nil>
	// sdk.String(cfg, "sourc"): the configuration has no attribute "sourc"; its schema has source, timeout
}
