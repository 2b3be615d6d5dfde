package pluginrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/fdpass"
	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// CallTimeout bounds the calls no attempt bounds: starting a plugin,
	// describe, configure, release, receiving a socket.
	CallTimeout = 10 * time.Second
	// hangGrace is how long past an attempt's deadline a plugin may take to
	// answer before it counts as hung and is restarted.
	hangGrace = 500 * time.Millisecond
)

// Process is a plugin binary's process as the client side uses it:
// core/pluginhost's, which starts it on first use and again after a crash.
// The plugins a Client returns call their process through it, so that a
// component configured before a restart configures itself again after.
type Process interface {
	// Client returns the client of the running process, starting it, or
	// waiting within ctx for its restart, when it does not run.
	Client(ctx context.Context) (*Client, error)
	// Running returns the client of the running process without starting
	// it; false when it does not run.
	Running() (*Client, bool)
	// Crashed says that a call through c found the process dead or hung:
	// it is killed at once, to be restarted after a backoff.
	Crashed(c *Client, cause error)
}

// Client speaks probe.v1 to one start of a plugin process: a restarted
// process has a new Client.
type Client struct {
	rpc     probev1.PluginClient
	ch      *fdpass.Channel
	streams *streams
	// infos are the plugins the process serves, as it described them.
	infos []*probev1.PluginInfo
	// sequence says the binary serves Sequences.
	sequence bool
}

// Connect dispenses the probe.v1 client of a started go-plugin process and
// asks the process what it serves. ch is the process's end of the
// socket-passing channel; the Client owns it from then on, also when
// Connect fails.
func Connect(ctx context.Context, rpc plugin.ClientProtocol, ch *fdpass.Channel) (*Client, error) {
	raw, err := rpc.Dispense(pluginSetKey)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	c := &Client{rpc: raw.(probev1.PluginClient), ch: ch, streams: &streams{}}
	resp, err := c.rpc.Describe(ctx, &probev1.DescribeRequest{})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("describe: %w", err)
	}
	c.infos, c.sequence = resp.Plugins, resp.Sequences
	return c, nil
}

// Close ends the client's idle Sequences streams (the busy ones end as
// their attempts do) and closes its socket-passing channel.
func (c *Client) Close() {
	c.streams.close()
	_ = c.ch.Close()
}

// Plugins returns the sdk view of the plugins the process serves. Their
// constructors configure instances in the process; their components call
// it, through proc, whichever start of it runs.
func (c *Client) Plugins(proc Process) ([]*sdk.Plugin, error) {
	out := make([]*sdk.Plugin, 0, len(c.infos))
	for _, info := range c.infos {
		pl, err := c.plugin(proc, info)
		if err != nil {
			return nil, err
		}
		out = append(out, pl)
	}
	return out, nil
}

// plugin returns the sdk view of one plugin the process serves.
func (c *Client) plugin(proc Process, info *probev1.PluginInfo) (*sdk.Plugin, error) {
	pl := &sdk.Plugin{Info: sdk.Info{Name: info.Name, Version: info.Version, Description: info.Description},
		DialerConn: sdk.ConnKind(info.DialerConn), HandshakeConn: sdk.ConnKind(info.HandshakeConn)}
	sequence := c.sequence // what the binary said when it described itself
	var err error
	if info.Resolver != nil {
		if pl.ResolverSchema, err = schemaFromProto(info.Resolver); err != nil {
			return nil, err
		}
		pl.NewResolver = func(cfg cty.Value) (sdk.Resolver, error) {
			c, err := configure(proc, info.Name, sdk.KindResolver, &pl.ResolverSchema, cfg)
			return &remoteResolver{c: c, sequence: sequence}, err
		}
	}
	if info.Dialer != nil {
		if pl.DialerSchema, err = schemaFromProto(info.Dialer); err != nil {
			return nil, err
		}
		pl.NewDialer = func(cfg cty.Value) (sdk.Dialer, error) {
			c, err := configure(proc, info.Name, sdk.KindDialer, &pl.DialerSchema, cfg)
			return &remoteDialer{c}, err
		}
	}
	if info.Handshake != nil {
		if pl.HandshakeSchema, err = schemaFromProto(info.Handshake); err != nil {
			return nil, err
		}
		pl.NewHandshaker = func(cfg cty.Value) (sdk.Handshaker, error) {
			c, err := configure(proc, info.Name, sdk.KindHandshake, &pl.HandshakeSchema, cfg)
			return &remoteHandshaker{c}, err
		}
	}
	return pl, nil
}

// withTimeout is the context of a call no attempt bounds.
func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), CallTimeout)
}

// component is a configured component instance in a plugin process. It
// configures itself again in a restarted process.
type component struct {
	proc   Process
	plugin string
	kind   sdk.Kind
	cfg    []byte

	mu       sync.Mutex
	client   *Client // the start of the process instance is in
	instance uint64
}

// configure makes a component in the plugin process, so that the plugin's
// own validation (an *sdk.AttrError) reaches `probe validate`.
func configure(proc Process, name string, kind sdk.Kind, schema *sdk.Schema, cfg cty.Value) (*component, error) {
	raw, err := configToProto(schema, cfg)
	if err != nil {
		return nil, fmt.Errorf("encode the configuration: %w", err)
	}
	c := &component{proc: proc, plugin: name, kind: kind, cfg: raw}
	ctx, cancel := withTimeout()
	defer cancel()
	if _, _, err := c.ensure(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ensure returns the running process's client and the component's instance
// in it, configuring it there first if the process is new; ctx bounds the
// wait for a restarting process.
func (c *component) ensure(ctx context.Context) (*Client, uint64, error) {
	cl, err := c.proc.Client(ctx)
	if err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == cl {
		return cl, c.instance, nil
	}
	cctx, cancel := withTimeout()
	defer cancel()
	resp, err := cl.rpc.Configure(cctx, &probev1.ConfigureRequest{Plugin: c.plugin, Kind: string(c.kind), Config: c.cfg})
	if err != nil {
		return nil, 0, fmt.Errorf("plugin %s: configure %s: %w", c.plugin, c.kind, err)
	}
	if ae := resp.AttrError; ae != nil {
		return nil, 0, attrErrorFromProto(ae)
	}
	if resp.Error != "" {
		return nil, 0, errors.New(resp.Error)
	}
	c.client, c.instance = cl, resp.Instance
	return cl, c.instance, nil
}

// instanceIn returns c's instance in the process cl is a client of,
// configuring it there first if need be.
func (c *component) instanceIn(ctx context.Context, cl *Client) (uint64, error) {
	now, id, err := c.ensure(ctx)
	switch {
	case err != nil:
		return 0, err
	case now != cl: // restarted in between
		return 0, errRestarted
	}
	return id, nil
}

// call is one RPC of an attempt: it bounds the RPC by the attempt's deadline
// plus hangGrace, and turns what went wrong into a failure of phase. A
// plugin that died or hung is restarted later and the failure is
// plugin.crashed; a canceled run is canceled; a Go error the plugin
// returned is plugin.error, with the plugin's message.
func call[R any](ctx context.Context, c *component, phase string, fn func(ctx context.Context, cl *Client, instance uint64, deadline int64) (R, error)) (R, *sdk.Failure) {
	var zero R
	cl, instance, err := c.ensure(ctx)
	if err != nil {
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginCrashed, Message: err.Error()}
	}
	deadline, hasDeadline := ctx.Deadline()
	rpcCtx := ctx
	if hasDeadline {
		var cancel context.CancelFunc
		rpcCtx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(hangGrace))
		defer cancel()
		stop := context.AfterFunc(ctx, func() {
			if errors.Is(ctx.Err(), context.Canceled) {
				cancel() // Ctrl-C ends the call; a deadline leaves the plugin its grace
			}
		})
		defer stop()
	}
	resp, err := fn(rpcCtx, cl, instance, deadlineToProto(deadline, hasDeadline))
	if err == nil {
		return resp, nil
	}
	st, _ := status.FromError(err)
	switch {
	case errors.Is(err, errRestarted): // cl is a new process, and a healthy one
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginCrashed, Message: fmt.Sprintf("plugin %s: %v", c.plugin, err)}
	case errors.Is(ctx.Err(), context.Canceled):
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassCanceled, Message: err.Error()}
	case st.Code() == codes.DeadlineExceeded:
		c.proc.Crashed(cl, fmt.Errorf("no answer %v after the attempt's deadline", hangGrace))
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginCrashed,
			Message: fmt.Sprintf("plugin %s hung: no answer %v after the attempt's deadline; it is restarted", c.plugin, hangGrace)}
	case st.Code() == codes.Unavailable || st.Code() == codes.Canceled:
		c.proc.Crashed(cl, err)
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginCrashed,
			Message: fmt.Sprintf("plugin %s died: %s; it is restarted", c.plugin, st.Message())}
	case st.Code() == codes.Internal && strings.HasPrefix(st.Message(), "panic:"):
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginCrashed, Message: fmt.Sprintf("plugin %s: %s", c.plugin, st.Message())}
	default:
		return zero, &sdk.Failure{Phase: phase, Class: sdk.ClassPluginError, Message: fmt.Sprintf("plugin %s: %s", c.plugin, st.Message())}
	}
}

// errRestarted fails a handshake over a connection that a plugin process
// held before it was restarted.
var errRestarted = errors.New("the plugin process that held the connection was restarted, and the connection is gone with it")

// failed is a failed phase measured on the host's side of the call, for a
// call that produced no phase of the plugin's own.
func failed(span sdk.Span, f *sdk.Failure) []sdk.Phase {
	p := span.End(false, map[string]any{"plugin_failure": f.Message})
	return []sdk.Phase{p}
}

type remoteResolver struct {
	c        *component
	sequence bool // its binary serves Sequences
}

func (r *remoteResolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	resp, f := call(ctx, r.c, sdk.PhaseResolve, func(ctx context.Context, cl *Client, inst uint64, deadline int64) (*probev1.ResolveResponse, error) {
		return cl.rpc.Resolve(ctx, &probev1.ResolveRequest{Instance: inst, Host: req.Host, Port: uint32(req.Port), DeadlineUnixNs: deadline})
	})
	if f != nil {
		return &sdk.ResolveResponse{Phases: failed(span, f), Failure: f}, nil
	}
	phases, err := phasesFromProto(resp.Phases)
	if err != nil {
		return nil, err
	}
	addrs, err := addressesFromProto(resp.Addresses)
	if err != nil {
		return nil, fmt.Errorf("plugin %s returned %w", r.c.plugin, err)
	}
	return &sdk.ResolveResponse{Addresses: addrs, Phases: phases, Failure: failureFromProto(resp.Failure)}, nil
}

type remoteDialer struct{ c *component }

func (d *remoteDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return d.DialBefore(ctx, req, nil)
}

// DialBefore dials, keeping the socket in the plugin process when next, the
// handshake after the dial, runs there too.
func (d *remoteDialer) DialBefore(ctx context.Context, req *sdk.DialRequest, next sdk.Handshaker) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
	token := fdpass.NewToken()
	nh, _ := next.(*remoteHandshaker)
	hold := nh != nil && nh.c.proc == d.c.proc
	var client *Client
	resp, f := call(ctx, d.c, sdk.PhaseConnect, func(ctx context.Context, cl *Client, inst uint64, deadline int64) (*probev1.DialResponse, error) {
		client = cl
		return cl.rpc.Dial(ctx, &probev1.DialRequest{Instance: inst, Address: req.Address.String(), Host: req.Host,
			DeadlineUnixNs: deadline, Token: token, Hold: hold})
	})
	if f != nil {
		return &sdk.DialResponse{Phases: failed(span, f), Failure: f}, nil
	}
	phases, err := phasesFromProto(resp.Phases)
	if err != nil {
		return nil, err
	}
	out := &sdk.DialResponse{Phases: phases, Failure: failureFromProto(resp.Failure)}
	if resp.Held != 0 {
		var local net.Addr // none for a socket of another kind: informative only
		if a, err := netip.ParseAddrPort(resp.LocalAddress); err == nil {
			local = net.TCPAddrFromAddrPort(a)
		}
		out.Conn = &heldConn{c: d.c, client: client, token: resp.Held, local: local, remote: net.TCPAddrFromAddrPort(req.Address)}
		return out, nil
	}
	if !resp.Sent && out.Failure == nil && next != nil {
		// A connection that is not a socket (QUIC) was closed in the
		// plugin: it cannot travel to the handshake after it.
		return nil, fmt.Errorf("plugin %s's connection cannot leave its process: the handshake after it must be served by the same plugin binary", d.c.plugin)
	}
	if resp.Sent {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CallTimeout)
		defer cancel()
		if out.Conn, err = client.ch.Receive(rctx, token); err != nil {
			return nil, fmt.Errorf("plugin %s: receive the connected socket: %w", d.c.plugin, err)
		}
	}
	return out, nil
}

type remoteHandshaker struct{ c *component }

func (h *remoteHandshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	return h.handshake(ctx, req, false)
}

// HandshakeLast runs the handshake and closes the connection in the plugin
// process: nothing follows it.
func (h *remoteHandshaker) HandshakeLast(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	return h.handshake(ctx, req, true)
}

func (h *remoteHandshaker) handshake(ctx context.Context, req *sdk.HandshakeRequest, last bool) (*sdk.HandshakeResponse, error) {
	// The engine names the phase after the handshake's block.
	span := sdk.StartSpan("", time.Time{})
	if req.Handle != nil {
		return nil, fmt.Errorf("the %s connection lives in probe's process, so it cannot travel to plugin %s: run the dialer out of process too, in the same plugin binary", req.Handle.Kind, h.c.plugin)
	}
	held, _ := req.Conn.(*heldConn)
	if held != nil && held.c.proc != h.c.proc {
		return nil, fmt.Errorf("the connection is held by plugin %s in another process; a handshake after it must be served by the same plugin binary", held.c.plugin)
	}
	if held == nil {
		if _, ok := req.Conn.(syscall.Conn); !ok {
			return nil, fmt.Errorf("the connection (%T) is wrapped in probe's process, so it cannot travel to plugin %s: run the handshake before it out of process too", req.Conn, h.c.plugin)
		}
	}
	var client *Client
	resp, f := call(ctx, h.c, "", func(ctx context.Context, cl *Client, inst uint64, deadline int64) (*probev1.HandshakeResponse, error) {
		client = cl
		hreq := &probev1.HandshakeRequest{Instance: inst, Host: req.Host, Address: req.Address.String(), DeadlineUnixNs: deadline, Last: last}
		if held != nil {
			if held.client != cl {
				return nil, errRestarted
			}
			hreq.Token, hreq.Held = held.token, true
			held.token = 0 // the plugin takes it back for this handshake
		} else {
			hreq.Token = fdpass.NewToken()
			if err := cl.ch.Send(hreq.Token, req.Conn); err != nil {
				return nil, status.Errorf(codes.Unavailable, "send the socket: %v", err)
			}
		}
		return cl.rpc.Handshake(ctx, hreq)
	})
	if f != nil {
		return &sdk.HandshakeResponse{Phases: failed(span, f), Failure: f}, nil
	}
	phases, err := phasesFromProto(resp.Phases)
	if err != nil {
		return nil, err
	}
	out := &sdk.HandshakeResponse{Phases: phases, Failure: failureFromProto(resp.Failure)}
	if resp.Held != 0 {
		out.Conn = &heldConn{c: h.c, client: client, token: resp.Held, local: req.Conn.LocalAddr(), remote: req.Conn.RemoteAddr()}
	}
	return out, nil
}

// heldConn stands for a connection a plugin process holds after a handshake
// (a TLS session lives there). Only a later handshake of the same plugin
// binary can use it; closing it releases it in the plugin.
type heldConn struct {
	c             *component
	client        *Client // the start of the process that holds it
	token         uint64
	local, remote net.Addr
}

var errHeld = errors.New("the connection is held by a plugin process; only a handshake served by the same plugin binary can use it")

func (h *heldConn) Read([]byte) (int, error)         { return 0, errHeld }
func (h *heldConn) Write([]byte) (int, error)        { return 0, errHeld }
func (h *heldConn) LocalAddr() net.Addr              { return h.local }
func (h *heldConn) RemoteAddr() net.Addr             { return h.remote }
func (h *heldConn) SetDeadline(time.Time) error      { return nil }
func (h *heldConn) SetReadDeadline(time.Time) error  { return nil }
func (h *heldConn) SetWriteDeadline(time.Time) error { return nil }

// Close releases the connection in the plugin process.
func (h *heldConn) Close() error {
	if h.token == 0 {
		return nil
	}
	token := h.token
	h.token = 0
	cl, ok := h.c.proc.Running()
	if !ok || cl != h.client {
		return nil // the process that held it is gone, and the connection with it
	}
	ctx, cancel := withTimeout()
	defer cancel()
	_, err := cl.rpc.Release(ctx, &probev1.ReleaseRequest{Token: token})
	return err
}

var (
	_ sdk.Resolver             = (*remoteResolver)(nil)
	_ engine.Sequencer         = (*remoteResolver)(nil)
	_ sdk.Dialer               = (*remoteDialer)(nil)
	_ engine.HoldingDialer     = (*remoteDialer)(nil)
	_ sdk.Handshaker           = (*remoteHandshaker)(nil)
	_ engine.ClosingHandshaker = (*remoteHandshaker)(nil)
	_ net.Conn                 = (*heldConn)(nil)
)

// Sequence runs a whole attempt in the plugin process as one request on a
// Sequences stream, when the dialer and every handshake are components of
// that process too.
func (r *remoteResolver) Sequence(ctx context.Context, req *engine.SequenceRequest) (*engine.SequenceResponse, bool, error) {
	d, ok := req.Dialer.(*remoteDialer)
	if !ok || d.c.proc != r.c.proc {
		return nil, false, nil
	}
	hs := make([]*component, len(req.Handshakers))
	for i, h := range req.Handshakers {
		rh, ok := h.(*remoteHandshaker)
		if !ok || rh.c.proc != r.c.proc {
			return nil, false, nil
		}
		hs[i] = rh.c
	}
	if !r.sequence {
		return nil, false, nil // a binary built before Sequences existed
	}
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	resp, f := call(ctx, r.c, sdk.PhaseResolve, func(ctx context.Context, cl *Client, inst uint64, deadline int64) (*probev1.SequenceResponse, error) {
		sreq := &probev1.SequenceRequest{Resolver: inst, Host: req.Host, Port: uint32(req.Port), DeadlineUnixNs: deadline}
		// The other components' instances in this start of the process.
		var err error
		if sreq.Dialer, err = d.c.instanceIn(ctx, cl); err != nil {
			return nil, err
		}
		for _, c := range hs {
			id, err := c.instanceIn(ctx, cl)
			if err != nil {
				return nil, err
			}
			sreq.Handshakes = append(sreq.Handshakes, id)
		}
		return cl.streams.sequence(ctx, cl.rpc, sreq)
	})
	if f != nil {
		f.Message += " (the whole attempt ran as one request to the plugin)"
		return &engine.SequenceResponse{Resolve: &sdk.ResolveResponse{Phases: failed(span, f), Failure: f}}, true, nil
	}
	out := &engine.SequenceResponse{}
	phases, err := phasesFromProto(resp.Resolve.GetPhases())
	if err != nil {
		return nil, true, err
	}
	addrs, err := addressesFromProto(resp.Addresses)
	if err != nil {
		return nil, true, fmt.Errorf("plugin %s returned %w", r.c.plugin, err)
	}
	out.Resolve = &sdk.ResolveResponse{Addresses: addrs, Phases: phases, Failure: failureFromProto(resp.Resolve.GetFailure())}
	if resp.Dial != nil {
		if phases, err = phasesFromProto(resp.Dial.Phases); err != nil {
			return nil, true, err
		}
		out.Dial = &sdk.DialResponse{Phases: phases, Failure: failureFromProto(resp.Dial.Failure)}
	}
	for _, st := range resp.Handshakes {
		if phases, err = phasesFromProto(st.Phases); err != nil {
			return nil, true, err
		}
		out.Handshakes = append(out.Handshakes, &sdk.HandshakeResponse{Phases: phases, Failure: failureFromProto(st.Failure)})
	}
	return out, true, nil
}
