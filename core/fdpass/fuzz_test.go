package fdpass

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The operations of a FuzzChannel script, one byte each (modulo opCount),
// followed by their arguments.
const (
	opSend        = iota // k: a socket tagged token k (of four)
	opRaw                // len, payload bytes, fd count, fd kind: any message
	opReceive            // k: Receive token k
	opReceiveHeld        // i: Receive the i-th smallest token the channel holds
	opPeerDies           // the sending end closes
	opClose              // the channel closes
	opCount
)

// fuzzTokens are the tokens opSend and opReceive choose from.
var fuzzTokens = []uint64{1, 2, 0x0102030405060708, 1 << 63}

// barrierBase starts the tokens of the barrier messages.
const barrierBase = 0xba00_0000_0000_0000

// held is a descriptor the channel holds, by the script's model: the peer
// of a socket, or nil for a descriptor that is not a socket.
type held struct{ peer net.Conn }

// script plays a FuzzChannel script against a Channel and checks each step
// against a model of it.
type script struct {
	t      *testing.T
	b      []byte
	ch     *Channel
	remote *os.File
	held   map[uint64]held
	closed bool       // the channel is closed, or its peer is gone
	conns  []net.Conn // to close at the end
	seq    uint64     // barrier tokens sent
}

// next returns the script's next byte, 0 past its end.
func (s *script) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// descriptors returns n new descriptors to send and their peers: ends of
// socketpairs, or read ends of pipes (peer nil) when pipes is set.
func (s *script) descriptors(n int, pipes bool) (fds []int, peers []net.Conn) {
	for range n {
		var p [2]int
		var err error
		if pipes {
			err = unix.Pipe2(p[:], unix.O_CLOEXEC)
		} else {
			p, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		}
		if err != nil {
			s.t.Fatal(err)
		}
		if pipes {
			unix.Close(p[1])
			fds, peers = append(fds, p[0]), append(peers, nil)
			continue
		}
		f := os.NewFile(uintptr(p[1]), "peer")
		peer, err := net.FileConn(f)
		f.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		s.conns = append(s.conns, peer)
		fds, peers = append(fds, p[0]), append(peers, peer)
	}
	return fds, peers
}

// send sends one message and updates the model: the channel keeps a
// well-formed message's descriptor unless it holds one for that token
// already; it drops any other message; a message with neither payload nor
// descriptor reads as the end of the stream and closes the channel.
func (s *script) send(payload []byte, fds []int, peers []net.Conn) {
	sendRaw(s.t, s.remote, payload, fds...)
	closeAll(fds)
	switch {
	case len(payload) == 0 && len(fds) == 0:
		s.gone()
	case len(payload) == tokenLen && len(fds) == 1:
		if tok := binary.BigEndian.Uint64(payload); !s.has(tok) {
			s.held[tok] = held{peers[0]}
		}
	}
	s.barrier()
}

func (s *script) has(tok uint64) bool {
	_, ok := s.held[tok]
	return ok
}

// barrier sends a socket with a token of its own and receives it: every
// message sent before has then been handled.
func (s *script) barrier() {
	if s.closed {
		return
	}
	tok := barrierBase + s.seq
	for s.has(tok) { // a script's message took it
		s.seq++
		tok = barrierBase + s.seq
	}
	s.seq++
	fds, _ := s.descriptors(1, false)
	sendRaw(s.t, s.remote, binary.BigEndian.AppendUint64(nil, tok), fds...)
	closeAll(fds)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := s.ch.Receive(ctx, tok)
	if err != nil {
		s.t.Fatalf("barrier %#x: %v", tok, err)
	}
	conn.Close()
}

// receive receives tok and checks the outcome against the model.
func (s *script) receive(tok uint64) {
	h, ok := s.held[tok]
	wait := 5 * time.Second
	if !ok {
		wait = 2 * time.Millisecond // nothing comes
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := s.ch.Receive(ctx, tok)
	if conn != nil {
		s.conns = append(s.conns, conn)
	}
	delete(s.held, tok)
	switch {
	case s.closed:
		if !errors.Is(err, ErrClosed) {
			s.t.Fatalf("Receive(%#x) on a closed channel = %v, %v; want ErrClosed", tok, conn, err)
		}
	case !ok:
		if !errors.Is(err, context.DeadlineExceeded) || waiting(s.ch) != 0 {
			s.t.Fatalf("Receive(%#x) of nothing = %v, %v (%d waiting); want the deadline and no waiter", tok, conn, err, waiting(s.ch))
		}
	case h.peer == nil:
		if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
			s.t.Fatalf("Receive(%#x) of a pipe = %v, %v; want an error saying it is no socket", tok, conn, err)
		}
	default:
		if err != nil {
			s.t.Fatalf("Receive(%#x) = %v", tok, err)
		}
		// The socket received is the one sent: bytes reach its peer.
		if _, err := conn.Write([]byte{byte(tok)}); err != nil {
			s.t.Fatal(err)
		}
		got := make([]byte, 1)
		_ = h.peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(h.peer, got); err != nil || got[0] != byte(tok) {
			s.t.Fatalf("token %#x: the peer read %v, %v; want the byte written to the socket received", tok, got, err)
		}
	}
}

// gone waits for the channel to close after its stream ended.
func (s *script) gone() {
	s.closed = true
	select {
	case <-s.ch.Done():
	case <-time.After(5 * time.Second):
		s.t.Fatal("the channel is still open 5 s after its stream ended")
	}
}

// step plays one operation.
func (s *script) step() {
	switch s.next() % opCount {
	case opSend:
		if s.closed {
			return
		}
		fds, peers := s.descriptors(1, false)
		s.send(binary.BigEndian.AppendUint64(nil, fuzzTokens[s.next()%4]), fds, peers)
	case opRaw:
		payload := make([]byte, s.next()%12) // up to 11: shorter, longer and as long as a token
		for i := range payload {
			payload[i] = s.next()
		}
		n, pipes := int(s.next()%7), s.next()%2 == 1 // up to 6: more than one read takes
		if s.closed {
			return
		}
		fds, peers := s.descriptors(n, pipes)
		s.send(payload, fds, peers)
	case opReceive:
		s.receive(fuzzTokens[s.next()%4])
	case opReceiveHeld:
		i := int(s.next())
		if toks := slices.Sorted(func(yield func(uint64) bool) {
			for tok := range s.held {
				if !yield(tok) {
					return
				}
			}
		}); len(toks) > 0 {
			s.receive(toks[i%len(toks)])
		}
	case opPeerDies:
		if !s.closed {
			s.remote.Close()
			s.gone()
		}
	case opClose:
		if err := s.ch.Close(); err != nil {
			s.t.Fatalf("Close: %v", err)
		}
		s.closed = true
	}
}

// FuzzChannel plays the fuzzer's bytes as a script of messages sent to a
// Channel (well-formed or not: any payload length, none to six descriptors,
// sockets or pipes, unknown and duplicate tokens), Receives, the peer dying
// and Close, and checks each outcome against a model: a well-formed message
// is kept until claimed unless its token is held already, anything else is
// dropped; the socket received is the one sent. The Channel must never
// panic and, once closed, leave no descriptor or goroutine behind.
func FuzzChannel(f *testing.F) {
	tok := func(k byte) []byte { return []byte{opSend, k} }
	recv := func(k byte) []byte { return []byte{opReceive, k} }
	raw := func(payload []byte, fds, pipes byte) []byte {
		return slices.Concat([]byte{opRaw, byte(len(payload))}, payload, []byte{fds, pipes})
	}
	for _, seed := range [][]byte{
		slices.Concat(tok(0), recv(0)),
		slices.Concat(tok(1), tok(1), recv(1), recv(1)), // a duplicate is dropped
		slices.Concat(recv(2), tok(2), recv(2), tok(2), recv(2)),
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 1}, 1, 0), recv(0)),    // token 1, by hand
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 2}, 1, 1), recv(1)),    // a pipe
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 2}, 2, 0), recv(1)),    // two descriptors
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 2}, 6, 0), recv(1)),    // more than a read takes
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 1, 9}, 1, 0), recv(0)), // a long payload
		slices.Concat(raw([]byte{1, 2, 3}, 1, 0), raw(nil, 1, 0), []byte{opReceiveHeld, 0}),
		slices.Concat(raw([]byte{0, 0, 0, 0, 0, 0, 0, 1}, 0, 0), recv(0)), // no descriptor
		slices.Concat(tok(3), raw(nil, 0, 0), recv(3)),                    // an empty message ends the stream
		slices.Concat(tok(0), tok(1), []byte{opPeerDies}, recv(0)),        // the peer dies holding sockets
		slices.Concat(tok(0), []byte{opClose}, recv(0), tok(1)),
		slices.Concat(raw([]byte{0xba, 0, 0, 0, 0, 0, 0, 1}, 1, 0), recv(0)),
	} {
		f.Add(seed)
	}
	// Warm up what the runtime opens once (the network poller).
	local, remote, err := Pair()
	if err != nil {
		f.Fatal(err)
	}
	ch, err := New(local)
	if err != nil {
		f.Fatal(err)
	}
	ch.Close()
	remote.Close()

	f.Fuzz(func(t *testing.T, b []byte) {
		baseFDs, baseGoroutines := fdCount(t), runtime.NumGoroutine()
		local, remote, err := Pair()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := New(local)
		if err != nil {
			t.Fatal(err)
		}
		s := &script{t: t, b: b, ch: ch, remote: remote, held: map[uint64]held{}}
		for steps := 0; len(s.b) > 0 && steps < 64; steps++ {
			s.step()
		}
		if err := ch.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		remote.Close()
		for _, c := range s.conns {
			c.Close()
		}
		eventually(t, "descriptors and goroutines back to their baseline", func() bool {
			return fdCount(t) == baseFDs && runtime.NumGoroutine() <= baseGoroutines
		})
	})
}
