package pluginrpc

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/probe-dev/probe/core/proto/probev1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streams are a plugin process's idle Sequences streams. An attempt takes
// one, or opens one when none is idle, sends its request, reads the answer
// and puts the stream back; so there are as many streams as attempts ever
// ran at once in the process, each served by one goroutine of the plugin's,
// and an attempt costs a message each way instead of a gRPC call (a new
// stream with its headers, trailers and goroutine). A stream whose attempt
// did not end with an answer is dropped.
type streams struct {
	mu     sync.Mutex
	idle   []*stream
	closed bool
}

// stream is an open Sequences stream and the cancellation that ends it.
type stream struct {
	probev1.Plugin_SequencesClient
	cancel context.CancelFunc
}

// sequence runs one attempt on a stream of rpc's. ctx bounds the attempt:
// when it ends first, the stream is ended too and the error is ctx's, as a
// status, as a unary call's would be.
func (s *streams) sequence(ctx context.Context, rpc probev1.PluginClient, req *probev1.SequenceRequest) (*probev1.SequenceResponse, error) {
	st, err := s.take(rpc)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, st.cancel)
	resp, err := st.exchange(req)
	if stop() && err == nil {
		s.put(st)
		return resp, nil
	}
	st.cancel()
	if err == nil {
		return resp, nil // answered just as ctx ended
	}
	if ctx.Err() != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return nil, err
}

// exchange sends req and reads its answer.
func (st *stream) exchange(req *probev1.SequenceRequest) (*probev1.SequenceResponse, error) {
	// A stream the plugin ended takes no request (io.EOF); Recv has the
	// status it ended with.
	if err := st.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := st.Recv()
	if errors.Is(err, io.EOF) {
		return nil, status.Error(codes.Internal, "the plugin ended a Sequences stream without an answer")
	}
	return resp, err
}

// take returns an idle stream, or opens one.
func (s *streams) take(rpc probev1.PluginClient) (*stream, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		st := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return st, nil
	}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rpc.Sequences(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &stream{c, cancel}, nil
}

// put makes st idle again, or ends it when the process is gone.
func (s *streams) put(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		st.cancel()
		return
	}
	s.idle = append(s.idle, st)
}

// close ends the idle streams; the busy ones end as their attempts do.
func (s *streams) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.idle {
		st.cancel()
	}
	s.idle, s.closed = nil, true
}
