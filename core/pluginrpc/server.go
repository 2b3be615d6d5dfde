package pluginrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/probe-dev/probe/core/fdpass"
	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/probe-dev/probe/core/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Serve serves plugins from a plugin binary, probe.v1 over go-plugin: it is
// serve.Serve, the entry point plugin authors call from main. It returns
// when probe ends the process's session; run by hand, it says it is a
// plugin and exits.
func Serve(plugins ...*sdk.Plugin) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This binary is a probe plugin. It is started by probe, not by hand: "+
			"name it in a pipeline file's plugin block or put it on PROBE_PLUGIN_PATH.")
		os.Exit(1)
	}
	// The plugin's logger writes to the original stderr, which plugin.Serve
	// replaces: it is made first. sdk.Logger returns it.
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, JSONFormat: true, Output: os.Stderr})
	hclog.SetDefault(log)
	ch, err := fdpass.New(os.NewFile(FDPassFD, "fdpass"))
	if err != nil {
		log.Error("no socket-passing channel on fd 3", "error", err)
		os.Exit(1)
	}
	defer ch.Close()
	// A plugin never outlives probe: probe's end of the channel closes when
	// probe exits, even when it is killed and cannot stop its plugins.
	go func() {
		<-ch.Done()
		os.Exit(0)
	}()
	// A plugin process keeps a small heap that the attempts churn through:
	// at Go's default GOGC the collector ran about once per hundred attempts
	// and cost a tenth of the process's CPU. Four times the heap is still a
	// few tens of megabytes. GOGC in the environment (a plugin block's env)
	// overrides this.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         pluginSet(newServer(plugins, ch)),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          log,
	})
}

// server serves the probe.v1 Plugin service over a set of plugins.
type server struct {
	probev1.UnimplementedPluginServer
	plugins map[string]*sdk.Plugin
	ch      *fdpass.Channel

	mu        sync.Mutex
	instances map[uint64]any
	held      map[uint64]net.Conn
}

func newServer(plugins []*sdk.Plugin, ch *fdpass.Channel) *server {
	s := &server{plugins: map[string]*sdk.Plugin{}, ch: ch,
		instances: map[uint64]any{}, held: map[uint64]net.Conn{}}
	for _, p := range plugins {
		s.plugins[p.Info.Name] = p
	}
	return s
}

func (s *server) Describe(context.Context, *probev1.DescribeRequest) (*probev1.DescribeResponse, error) {
	resp := &probev1.DescribeResponse{Sequences: true}
	for _, p := range s.plugins {
		info := &probev1.PluginInfo{Name: p.Info.Name, Version: p.Info.Version, Description: p.Info.Description}
		for _, k := range p.Kinds() {
			schema, err := schemaToProto(p.Schema(k))
			if err != nil {
				return nil, status.Errorf(codes.Internal, "plugin %s %s schema: %v", p.Info.Name, k, err)
			}
			switch k {
			case sdk.KindResolver:
				info.Resolver = schema
			case sdk.KindDialer:
				info.Dialer = schema
			case sdk.KindHandshake:
				info.Handshake = schema
			}
		}
		resp.Plugins = append(resp.Plugins, info)
	}
	return resp, nil
}

func (s *server) Configure(_ context.Context, req *probev1.ConfigureRequest) (out *probev1.ConfigureResponse, err error) {
	defer guard(&err) // a constructor's mistake (sdk.String of a name its schema lacks) is its call's error
	p := s.plugins[req.Plugin]
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "this binary serves no plugin %q", req.Plugin)
	}
	kind := sdk.Kind(req.Kind)
	if !p.Serves(kind) {
		return nil, status.Errorf(codes.NotFound, "plugin %q serves no %s", req.Plugin, req.Kind)
	}
	cfg, err := configFromProto(p.Schema(kind), req.Config)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode %s configuration: %v", kind, err)
	}
	comp, err := p.New(kind, cfg)
	if err != nil {
		if ae, ok := sdk.AsAttrError(err); ok {
			return &probev1.ConfigureResponse{AttrError: attrErrorToProto(ae)}, nil
		}
		return &probev1.ConfigureResponse{Error: err.Error()}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fdpass.NewToken()
	s.instances[id] = comp
	return &probev1.ConfigureResponse{Instance: id}, nil
}

// instance returns the component id names, as a T.
func instance[T any](s *server, id uint64) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.instances[id].(T)
	if !ok {
		return c, status.Errorf(codes.NotFound, "no such component instance %d", id)
	}
	return c, nil
}

// begin starts serving a call: it returns the component id names, as a T,
// and ctx bounded by the attempt's deadline, sent as Unix nanoseconds (0 for
// none).
func begin[T any](ctx context.Context, s *server, id uint64, deadlineUnixNs int64) (T, context.Context, context.CancelFunc, error) {
	c, err := instance[T](s, id)
	if err != nil {
		return c, nil, nil, err
	}
	deadline, ok := deadlineFromProto(deadlineUnixNs)
	if !ok {
		ctx, cancel := context.WithCancel(ctx)
		return c, ctx, cancel, nil
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	return c, ctx, cancel, nil
}

// address parses a request's address.
func address(s string) (netip.AddrPort, error) {
	addr, err := netip.ParseAddrPort(s)
	if err != nil {
		return addr, status.Errorf(codes.InvalidArgument, "address %q: %v", s, err)
	}
	return addr, nil
}

// encodePhases encodes a component's phases for its answer.
func encodePhases(phases []sdk.Phase) ([]*probev1.Phase, error) {
	out, err := phasesToProto(phases)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return out, nil
}

// guard turns a component's panic into an error for its call alone.
func guard(err *error) {
	if v := recover(); v != nil {
		*err = status.Errorf(codes.Internal, "panic: %v", v)
	}
}

func (s *server) Resolve(ctx context.Context, req *probev1.ResolveRequest) (out *probev1.ResolveResponse, err error) {
	defer guard(&err)
	r, ctx, cancel, err := begin[sdk.Resolver](ctx, s, req.Instance, req.DeadlineUnixNs)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: req.Host, Port: uint16(req.Port)})
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	phases, err := encodePhases(resp.Phases)
	if err != nil {
		return nil, err
	}
	return &probev1.ResolveResponse{Addresses: addressesToProto(resp.Addresses), Phases: phases, Failure: failureToProto(resp.Failure)}, nil
}

func (s *server) Dial(ctx context.Context, req *probev1.DialRequest) (out *probev1.DialResponse, err error) {
	defer guard(&err)
	addr, err := address(req.Address)
	if err != nil {
		return nil, err
	}
	d, ctx, cancel, err := begin[sdk.Dialer](ctx, s, req.Instance, req.DeadlineUnixNs)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: req.Host})
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	phases, err := encodePhases(resp.Phases)
	if err != nil {
		return nil, err
	}
	out = &probev1.DialResponse{Phases: phases, Failure: failureToProto(resp.Failure)}
	switch {
	case resp.Conn != nil && req.Hold:
		out.Held, out.LocalAddress = s.hold(resp.Conn), resp.Conn.LocalAddr().String()
	case resp.Conn != nil:
		if err := s.ch.Send(req.Token, resp.Conn); err != nil {
			_ = resp.Conn.Close()
			return nil, status.Errorf(codes.Internal, "send the connected socket: %v", err)
		}
		out.Sent = true
	}
	return out, nil
}

func (s *server) Handshake(ctx context.Context, req *probev1.HandshakeRequest) (out *probev1.HandshakeResponse, err error) {
	defer guard(&err)
	addr, err := address(req.Address)
	if err != nil {
		return nil, err
	}
	h, ctx, cancel, err := begin[sdk.Handshaker](ctx, s, req.Instance, req.DeadlineUnixNs)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var conn net.Conn
	if req.Held {
		s.mu.Lock()
		conn = s.held[req.Token]
		delete(s.held, req.Token)
		s.mu.Unlock()
		if conn == nil {
			return nil, status.Errorf(codes.NotFound, "no held connection %d", req.Token)
		}
	} else if conn, err = s.ch.Receive(ctx, req.Token); err != nil {
		return nil, status.Errorf(codes.Unavailable, "receive the socket: %v", err)
	}
	defer func() {
		if v := recover(); v != nil {
			_ = conn.Close() // the handshake's panic is its call's error (guard), the socket closed
			panic(v)
		}
	}()
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: req.Host, Address: addr})
	if err != nil {
		_ = conn.Close()
		return nil, status.Error(codes.Unknown, err.Error())
	}
	phases, err := encodePhases(resp.Phases)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	out = &probev1.HandshakeResponse{Phases: phases, Failure: failureToProto(resp.Failure)}
	if resp.Conn != nil {
		conn = resp.Conn
	}
	switch {
	case resp.Failure != nil:
		_ = conn.Close()
	case req.Last:
		closeLater(conn)
	default:
		out.Held = s.hold(conn)
	}
	return out, nil
}

// hold keeps conn for a later handshake or Release and returns its token.
func (s *server) hold(conn net.Conn) uint64 {
	token := fdpass.NewToken()
	s.mu.Lock()
	s.held[token] = conn
	s.mu.Unlock()
	return token
}

func (s *server) Release(_ context.Context, req *probev1.ReleaseRequest) (*probev1.ReleaseResponse, error) {
	s.mu.Lock()
	conn := s.held[req.Token]
	delete(s.held, req.Token)
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	return &probev1.ReleaseResponse{}, nil
}

// Sequences runs the stream's requests one after another on the stream's
// goroutine, which keeps the stack the attempts grew. A request that fails
// with a Go error ends the stream with that error's status, as a unary call
// would have ended.
func (s *server) Sequences(stream probev1.Plugin_SequencesServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // probe closed the stream
		}
		if err != nil {
			return err
		}
		resp, err := s.sequence(stream.Context(), req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// sequence runs one attempt of a Sequences stream.
func (s *server) sequence(ctx context.Context, req *probev1.SequenceRequest) (out *probev1.SequenceResponse, err error) {
	defer guard(&err)
	r, ctx, cancel, err := begin[sdk.Resolver](ctx, s, req.Resolver, req.DeadlineUnixNs)
	if err != nil {
		return nil, err
	}
	defer cancel()
	d, err := instance[sdk.Dialer](s, req.Dialer)
	if err != nil {
		return nil, err
	}
	hs := make([]sdk.Handshaker, len(req.Handshakes))
	for i, id := range req.Handshakes {
		if hs[i], err = instance[sdk.Handshaker](s, id); err != nil {
			return nil, err
		}
	}
	seq := sequence{start: time.Now(), out: &probev1.SequenceResponse{}}
	var rr *sdk.ResolveResponse
	if seq.out.Resolve, rr = stage(&seq, func() (*sdk.ResolveResponse, error) {
		return r.Resolve(ctx, &sdk.ResolveRequest{Host: req.Host, Port: uint16(req.Port)})
	}); rr == nil || len(rr.Addresses) == 0 {
		return seq.result()
	}
	seq.out.Addresses = addressesToProto(rr.Addresses)
	addr := netip.AddrPortFrom(rr.Addresses[0], uint16(req.Port))
	var dr *sdk.DialResponse
	if seq.out.Dial, dr = stage(&seq, func() (*sdk.DialResponse, error) {
		return d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: req.Host})
	}); dr == nil {
		return seq.result()
	}
	conn := dr.Conn
	defer func() { closeLater(conn) }()
	for _, h := range hs {
		st, hr := stage(&seq, func() (*sdk.HandshakeResponse, error) {
			return h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: req.Host, Address: addr})
		})
		seq.out.Handshakes = append(seq.out.Handshakes, st)
		if hr == nil {
			break
		}
		if hr.Conn != nil {
			conn = hr.Conn
		}
	}
	return seq.result()
}

// sequence is an attempt of a Sequences stream in progress.
type sequence struct {
	start time.Time
	out   *probev1.SequenceResponse
	err   error // encoding the phases failed
}

func (q *sequence) result() (*probev1.SequenceResponse, error) {
	if q.err != nil {
		return nil, status.Error(codes.Internal, q.err.Error())
	}
	return q.out, nil
}

// stage runs one component of a sequence and encodes its answer, its phases
// placed from the sequence's start. It returns the answer only when the
// attempt may go on: no failure, and a connection after a dial. A Go error
// or a panic of the component fails the stage, as plugin.error or
// plugin.crashed, as the engine fails a component in process.
func stage[R interface {
	*sdk.ResolveResponse | *sdk.DialResponse | *sdk.HandshakeResponse
}](q *sequence, fn func() (R, error)) (*probev1.Stage, R) {
	at := time.Now()
	resp, err := func() (resp R, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = panicked{v}
			}
		}()
		return fn()
	}()
	var (
		phases []sdk.Phase
		f      *sdk.Failure
		goOn   bool
	)
	switch v := any(resp).(type) {
	case *sdk.ResolveResponse:
		if v != nil {
			phases, f, goOn = v.Phases, v.Failure, true
		}
	case *sdk.DialResponse:
		if v != nil {
			phases, f, goOn = v.Phases, v.Failure, v.Conn != nil
		}
	case *sdk.HandshakeResponse:
		if v != nil {
			phases, f, goOn = v.Phases, v.Failure, true
		}
	}
	if err == nil && phases == nil && f == nil {
		err = errors.New("plugin returned neither phases, a failure nor an error")
	}
	if err != nil {
		class := sdk.ClassPluginError
		if _, ok := err.(panicked); ok {
			class = sdk.ClassPluginCrashed
		}
		phases = []sdk.Phase{{Start: 0, Duration: time.Since(at), Attrs: map[string]any{}}}
		f = &sdk.Failure{Class: class, Message: err.Error()}
	}
	offset := at.Sub(q.start)
	for i := range phases {
		phases[i].Start += offset
	}
	enc, encErr := phasesToProto(phases)
	if encErr != nil && q.err == nil {
		q.err = encErr
	}
	st := &probev1.Stage{Phases: enc, Failure: failureToProto(f)}
	if err != nil || f != nil || !goOn {
		var zero R
		return st, zero
	}
	return st, resp
}

// panicked is a component's panic in a sequence.
type panicked struct{ v any }

func (p panicked) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// closeLater closes conn after the answer, bounded: closing is not part of
// the probe, and a TLS close_notify must not hang on a peer that stopped
// reading.
func closeLater(conn net.Conn) {
	go func() {
		_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_ = conn.Close()
	}()
}
