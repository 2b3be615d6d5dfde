package icmpecho

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/probe-dev/probe/core/sdk"
)

// The kinds of socket the dialer sends from, as the socket attribute and
// the phase's attribute of the same name say.
const (
	socketAuto         = "auto"
	socketUnprivileged = "unprivileged"
	socketRaw          = "raw"
)

// Limits of the configuration.
const (
	maxCount    = 1000
	maxSize     = 65000
	minInterval = time.Millisecond
)

// Dialer sends ICMP echo requests and measures their round trips.
type Dialer struct {
	count    int
	interval time.Duration
	size     int
	socket   string     // socketAuto, socketUnprivileged or socketRaw
	source   netip.Addr // local address; invalid for the kernel's choice
	timeout  time.Duration
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{socket: sdk.String(cfg, "socket")}
	var err error
	if d.count, err = sdk.Int(cfg, "count"); err != nil {
		return nil, err
	}
	if d.count < 1 || d.count > maxCount {
		return nil, sdk.AttrErrorf("count", "Invalid count", "count must be from 1 to %d, got %d.", maxCount, d.count)
	}
	if d.size, err = sdk.Int(cfg, "size"); err != nil {
		return nil, err
	}
	if d.size < 0 || d.size > maxSize {
		return nil, sdk.AttrErrorf("size", "Invalid size", "size must be from 0 to %d bytes, got %d.", maxSize, d.size)
	}
	if d.interval, err = sdk.Duration(cfg, "interval"); err != nil {
		return nil, err
	}
	if d.interval < minInterval {
		return nil, sdk.AttrErrorf("interval", "Invalid interval", "interval must be at least %v, got %v.", minInterval, d.interval)
	}
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	switch d.socket {
	case socketAuto, socketUnprivileged, socketRaw:
	default:
		return nil, sdk.AttrErrorf("socket", "Invalid socket",
			"socket must be \"auto\", \"unprivileged\" or \"raw\", got %q.", d.socket)
	}
	if s := sdk.String(cfg, "source"); s != "" {
		if d.source, err = netip.ParseAddr(s); err != nil {
			return nil, sdk.AttrErrorf("source", "Invalid source address",
				"source must be an IP address such as \"192.0.2.10\" or \"2001:db8::10\", got %q.", s)
		}
	}
	return d, nil
}

// Dial sends the echo requests to req.Address's IP (its port is not used)
// and waits for their replies until every one has come, or the phase's
// cap or the attempt's deadline passes. The phase "icmp" runs from the
// socket's opening to the last reply (or the deadline). An attempt with no
// reply at all fails; one with some replies succeeds and reports its loss.
// The response never has a Conn.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	dst := req.Address.Addr().Unmap()
	span := sdk.StartSpan(Phase, callAt)
	if d.source.IsValid() && d.source.Unmap().Is4() != dst.Is4() {
		return failed(span, nil, ClassError, fmt.Sprintf("icmp to %s: source %s is of the other address family", dst, d.source)), nil
	}
	ep, err := d.listen(dst.Is6())
	if err != nil {
		return failed(span, nil, listenClass(err), fmt.Sprintf("icmp to %s: %v", dst, err)), nil
	}
	defer ep.conn.Close()
	x := &exchange{ep: ep, dst: dst, echoes: make([]echo, d.count), payload: make([]byte, d.size)}
	_, _ = rand.Read(x.payload)
	if ep.raw {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<16))
		x.id = int(n.Int64())
		if err := ep.filterID(x.id); err != nil {
			return failed(span, nil, ClassError, fmt.Sprintf("icmp to %s: %v", dst, err)), nil
		}
	}
	setup := time.Since(callAt)
	err = x.run(ctx, d.interval)
	attrs := x.attrs()
	attrs["setup_ms"] = sdk.Milliseconds(setup.Round(time.Microsecond))
	received := attrs["received"].(int)
	switch {
	case received > 0:
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(true, attrs)}}, nil
	case err != nil:
		return failed(span, attrs, sendClass(ctx, err), fmt.Sprintf("icmp to %s: %v", dst, err)), nil
	case x.unreachable != "":
		return failed(span, attrs, ClassUnreachable, fmt.Sprintf("icmp to %s: %s", dst, x.unreachable)), nil
	}
	class := sdk.ContextClass(ctx, ClassTimeout)
	if class == "" {
		class = ClassTimeout
	}
	return failed(span, attrs, class, fmt.Sprintf("icmp to %s: no echo reply to %d request(s)", dst, d.count)), nil
}

// failed ends span as failed with attrs and returns the response.
func failed(span sdk.Span, attrs map[string]any, class sdk.Class, msg string) *sdk.DialResponse {
	return &sdk.DialResponse{
		Phases:  []sdk.Phase{span.End(false, attrs)},
		Failure: &sdk.Failure{Phase: Phase, Class: class, Message: msg},
	}
}

// endpoint is an open ICMP socket.
type endpoint struct {
	conn *icmp.PacketConn
	raw  bool // a raw socket, else a ping socket (SOCK_DGRAM)
	v6   bool
}

// listen opens the socket the configuration asks for, of the family of
// v6, bound to the source address if one is set.
func (d *Dialer) listen(v6 bool) (*endpoint, error) {
	local := "0.0.0.0"
	if v6 {
		local = "::"
	}
	if d.source.IsValid() {
		local = d.source.String()
	}
	open := func(raw bool) (*endpoint, error) {
		network := map[[2]bool]string{{false, false}: "udp4", {false, true}: "ip4:icmp",
			{true, false}: "udp6", {true, true}: "ip6:ipv6-icmp"}[[2]bool{v6, raw}]
		c, err := icmp.ListenPacket(network, local)
		if err != nil {
			return nil, err
		}
		ep := &endpoint{conn: c, raw: raw, v6: v6}
		if err := ep.setOptions(); err != nil {
			_ = c.Close()
			return nil, err
		}
		return ep, nil
	}
	switch d.socket {
	case socketRaw:
		return open(true)
	case socketUnprivileged:
		ep, err := open(false)
		if notPermitted(err) {
			return nil, fmt.Errorf("%w (net.ipv4.ping_group_range does not include this process's group)", err)
		}
		return ep, err
	}
	ep, err := open(false)
	if !notPermitted(err) {
		return ep, err
	}
	ep, rerr := open(true)
	if notPermitted(rerr) {
		return nil, fmt.Errorf("no unprivileged ping socket (%v: net.ipv4.ping_group_range does not include this process's group) "+
			"and no raw socket (%w: needs root or CAP_NET_RAW)", err, rerr)
	}
	return ep, rerr
}

// setOptions asks for the TTL or hop limit of each reply and, on a raw
// socket, has the kernel pass only the ICMP types the exchange reads.
func (ep *endpoint) setOptions() error {
	if ep.v6 {
		p := ep.conn.IPv6PacketConn()
		if err := p.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
			return err
		}
		if ep.raw {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeTimeExceeded} {
				f.Accept(t)
			}
			return p.SetICMPFilter(&f)
		}
		return nil
	}
	p := ep.conn.IPv4PacketConn()
	if err := p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
		return err
	}
	if ep.raw {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		for _, t := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable, ipv4.ICMPTypeTimeExceeded} {
			f.Accept(t)
		}
		return p.SetICMPFilter(&f)
	}
	return nil
}

// filterID has the kernel pass the raw socket only the echo replies with
// identifier id, and every error message: a raw socket gets a copy of each
// ICMP message to the host, so that without it n concurrent attempts would
// each read the replies of all n. An IPv4 raw socket's filter sees the IP
// header, an IPv6 one's the ICMPv6 message.
func (ep *endpoint) filterID(id int) error {
	// Past the type's check: a type other than echo reply jumps to pass.
	head := []bpf.Instruction{
		bpf.LoadMemShift{Off: 0},          // X = the IPv4 header's length
		bpf.LoadIndirect{Off: 0, Size: 1}, // the ICMP type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(ipv4.ICMPTypeEchoReply), SkipTrue: 2},
		bpf.LoadIndirect{Off: 4, Size: 2}, // the identifier
	}
	if ep.v6 {
		head = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1}, // the ICMPv6 type
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(ipv6.ICMPTypeEchoReply), SkipTrue: 2},
			bpf.LoadAbsolute{Off: 4, Size: 2}, // the identifier
		}
	}
	prog, err := bpf.Assemble(append(head,
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(id), SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 16}, // pass
		bpf.RetConstant{Val: 0},       // drop
	))
	if err != nil {
		return fmt.Errorf("assemble the socket filter: %w", err)
	}
	if ep.v6 {
		return ep.conn.IPv6PacketConn().SetBPF(prog)
	}
	return ep.conn.IPv4PacketConn().SetBPF(prog)
}

// echo is one echo request and what became of it.
type echo struct {
	sent    time.Time
	rtt     time.Duration
	hops    int // the reply's TTL or hop limit, -1 when the kernel did not say
	replied bool
}

// exchange is one attempt's echo requests and replies.
type exchange struct {
	ep      *endpoint
	dst     netip.Addr
	id      int // the echo identifier; a ping socket's kernel sets its own
	payload []byte
	echoes  []echo // by sequence number - 1
	// unreachable is the first destination unreachable or time exceeded
	// message about one of the requests, "" when none came.
	unreachable string
}

// reply is a message read from the socket that concerns the exchange.
type reply struct {
	at          time.Time
	seq         int // 1-based; 0 for an error message
	hops        int
	unreachable string
}

// run sends the requests, interval apart, and collects the replies until
// each request has one or ctx ends. The error is the first that sending
// met; a request whose reply does not come is lost, not an error.
func (x *exchange) run(ctx context.Context, interval time.Duration) error {
	replies := make(chan reply, len(x.echoes))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.read(replies, stop)
	}()
	defer func() {
		close(stop)
		_ = x.ep.conn.SetReadDeadline(time.Now()) // unblock the reader
		<-done
	}()
	if dl, ok := ctx.Deadline(); ok {
		_ = x.ep.conn.SetReadDeadline(dl)
	}
	if ctx.Err() != nil {
		return nil
	}
	tick := time.NewTimer(0)
	defer tick.Stop()
	sent, pending := 0, 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			sent++
			if err := x.send(sent); err != nil {
				return err
			}
			pending++
			if sent < len(x.echoes) {
				tick.Reset(interval)
			}
		case r := <-replies:
			if r.seq == 0 {
				if x.unreachable == "" {
					x.unreachable = r.unreachable
				}
				continue
			}
			e := &x.echoes[r.seq-1]
			if e.replied || e.sent.IsZero() {
				continue // a duplicate, or a reply to another attempt's request
			}
			e.replied, e.rtt, e.hops = true, r.at.Sub(e.sent), r.hops
			if pending--; pending == 0 && sent == len(x.echoes) {
				return nil
			}
		}
	}
}

// send sends the echo request of sequence number seq.
func (x *exchange) send(seq int) error {
	typ := icmp.Type(ipv4.ICMPTypeEcho)
	if x.ep.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: x.id, Seq: seq, Data: x.payload}}).Marshal(nil)
	if err != nil {
		return fmt.Errorf("encode echo request: %w", err)
	}
	var to net.Addr = &net.UDPAddr{IP: x.dst.AsSlice(), Zone: x.dst.Zone()}
	if x.ep.raw {
		to = &net.IPAddr{IP: x.dst.AsSlice(), Zone: x.dst.Zone()}
	}
	x.echoes[seq-1].sent = time.Now()
	if _, err := x.ep.conn.WriteTo(b, to); err != nil {
		x.echoes[seq-1].sent = time.Time{} // not sent, so not lost
		return fmt.Errorf("send echo request %d: %w", seq, err)
	}
	return nil
}

// read reads the socket until it fails (its deadline, or closed) and
// passes on the replies and error messages about this exchange.
func (x *exchange) read(out chan<- reply, stop <-chan struct{}) {
	buf := make([]byte, maxSize+512)
	for {
		n, hops, src, err := x.readFrom(buf)
		at := time.Now()
		if err != nil {
			return
		}
		if r, ok := x.match(buf[:n], x.from(src)); ok {
			r.at, r.hops = at, hops
			x.deliver(out, stop, r)
		}
	}
}

// match returns the message b as a reply when it concerns the exchange: an
// echo reply from the target (fromTarget) to one of its requests, with its
// payload, or an error message that quotes one of them. A raw socket reads
// every ICMP message to the host, and b may be any bytes.
func (x *exchange) match(b []byte, fromTarget bool) (reply, bool) {
	proto := 1 // ICMP for IPv4 (iana.ProtocolICMP)
	if x.ep.v6 {
		proto = 58 // ICMPv6
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return reply{}, false
	}
	switch body := m.Body.(type) {
	case *icmp.Echo:
		if !fromTarget || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) ||
			(x.ep.raw && body.ID != x.id) || body.Seq < 1 || body.Seq > len(x.echoes) || !bytes.Equal(body.Data, x.payload) {
			return reply{}, false
		}
		return reply{seq: body.Seq}, true
	case *icmp.DstUnreach:
		return x.quoted(m, body.Data)
	case *icmp.TimeExceeded:
		return x.quoted(m, body.Data)
	}
	return reply{}, false
}

// deliver passes r on unless the exchange has stopped.
func (x *exchange) deliver(out chan<- reply, stop <-chan struct{}, r reply) {
	select {
	case out <- r:
	case <-stop:
	}
}

// readFrom reads one message with its TTL or hop limit (-1 when the
// kernel gave none).
func (x *exchange) readFrom(buf []byte) (n, hops int, src net.Addr, err error) {
	hops = -1
	if x.ep.v6 {
		var cm *ipv6.ControlMessage
		n, cm, src, err = x.ep.conn.IPv6PacketConn().ReadFrom(buf)
		if cm != nil {
			hops = cm.HopLimit
		}
		return n, hops, src, err
	}
	var cm *ipv4.ControlMessage
	n, cm, src, err = x.ep.conn.IPv4PacketConn().ReadFrom(buf)
	if cm != nil {
		hops = cm.TTL
	}
	return n, hops, src, err
}

// from reports whether src is the target.
func (x *exchange) from(src net.Addr) bool {
	var ip net.IP
	switch a := src.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	a, ok := netip.AddrFromSlice(ip)
	return ok && a.Unmap() == x.dst.WithZone("")
}

// quoted returns the error message m, whose body quotes data, as a reply
// when the packet it quotes is one of the exchange's requests. Only a raw
// socket reads such messages: a ping socket's kernel keeps them.
func (x *exchange) quoted(m *icmp.Message, data []byte) (reply, bool) {
	// The quoted packet: the request's IP header, then at least its ICMP
	// header (type, code, checksum, identifier, sequence number).
	hl := 40
	if !x.ep.v6 {
		if len(data) < 1 {
			return reply{}, false
		}
		hl = int(data[0]&0x0f) << 2
	}
	if len(data) < hl+8 {
		return reply{}, false
	}
	h := data[hl:]
	id, seq := int(h[4])<<8|int(h[5]), int(h[6])<<8|int(h[7])
	if !x.ep.raw || id != x.id || seq < 1 || seq > len(x.echoes) {
		return reply{}, false
	}
	return reply{unreachable: fmt.Sprintf("%v (code %d) for echo request %d", m.Type, m.Code, seq)}, true
}

// attrs returns the phase's attributes: the socket, the counts, the loss,
// the round trips' mean, minimum and maximum, the first reply's TTL (IPv4)
// or hop limit (IPv6), and each request's outcome.
func (x *exchange) attrs() map[string]any {
	hopsName := "ttl"
	if x.ep.v6 {
		hopsName = "hop_limit"
	}
	kind := socketUnprivileged
	if x.ep.raw {
		kind = socketRaw
	}
	attrs := map[string]any{"socket": kind, "remote": x.dst.String()}
	if la, ok := x.ep.conn.LocalAddr().(*net.UDPAddr); ok {
		attrs["local"] = la.IP.String()
	} else if la, ok := x.ep.conn.LocalAddr().(*net.IPAddr); ok {
		attrs["local"] = la.IP.String()
	}
	var (
		sent, received int
		rtts           []time.Duration
		list           []any
		firstHops      = -1
	)
	for i, e := range x.echoes {
		if e.sent.IsZero() {
			break
		}
		sent++
		entry := map[string]any{"seq": i + 1}
		if e.replied {
			received++
			rtts = append(rtts, e.rtt)
			entry["rtt_ms"] = sdk.Milliseconds(e.rtt.Round(time.Microsecond))
			if e.hops >= 0 {
				entry[hopsName] = e.hops
				if firstHops < 0 {
					firstHops = e.hops
				}
			}
		} else {
			entry["lost"] = true
		}
		list = append(list, entry)
	}
	attrs["sent"], attrs["received"] = sent, received
	attrs["loss_percent"] = 0.0
	if sent > 0 {
		attrs["loss_percent"] = math.Round(float64(sent-received)*100/float64(sent)*100) / 100
	}
	attrs["echoes"] = list
	if firstHops >= 0 {
		attrs[hopsName] = firstHops
	}
	if len(rtts) > 0 {
		var sum time.Duration
		for _, r := range rtts {
			sum += r
		}
		ms := func(d time.Duration) float64 { return sdk.Milliseconds(d.Round(time.Microsecond)) }
		attrs["rtt_ms"] = ms(sum / time.Duration(len(rtts)))
		attrs["rtt_min_ms"] = ms(slices.Min(rtts))
		attrs["rtt_max_ms"] = ms(slices.Max(rtts))
	}
	return attrs
}

// notPermitted reports whether err is the system's refusal of a socket.
func notPermitted(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// listenClass returns the failure class of an error opening the socket.
func listenClass(err error) sdk.Class {
	switch {
	case sdk.FDLimit(err):
		return sdk.ClassFDLimit
	case notPermitted(err):
		return ClassNotPermitted
	}
	return ClassError
}

// sendClass returns the failure class of an error sending a request.
func sendClass(ctx context.Context, err error) sdk.Class {
	switch {
	case sdk.FDLimit(err):
		return sdk.ClassFDLimit
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassUnreachable
	case notPermitted(err):
		return ClassNotPermitted // a broadcast address, or a firewall's refusal
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	return ClassError
}

var _ sdk.Dialer = (*Dialer)(nil)
