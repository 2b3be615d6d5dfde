package dnsmiekg

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"
)

// TestHostileReplies checks what a reply that is not the query's own ends
// in, and that it ends in time: a datagram with another ID is a stray, so
// the query waits for its own reply until its timeout (or the attempt's
// deadline, if sooner); over TCP, or with another question, the server is
// broken, which shows at once.
func TestHostileReplies(t *testing.T) {
	// answer replies 127.0.0.1 to the query q, edited by edit.
	answer := func(edit func(m *dns.Msg)) func(q []byte) []byte {
		return func(q []byte) []byte {
			m := new(dns.Msg)
			if err := m.Unpack(q); err != nil || len(m.Question) != 1 {
				return nil
			}
			m.Response = true
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(127, 0, 0, 1)}}
			edit(m)
			b, err := m.Pack()
			if err != nil {
				return nil
			}
			return b
		}
	}
	wrongID := answer(func(m *dns.Msg) { m.Id++ })
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name      string
		reply     func([]byte) []byte
		transport string
		deadline  time.Duration // the attempt's; 0 for none
		class     sdk.Class
		message   string
		min, max  time.Duration // of the phase
	}{
		{"wrong id over udp", wrongID, "udp", 0, sdk.ClassDNSTimeout, "i/o timeout", timeout, timeout + 60*time.Millisecond},
		// The deadline runs from before the call, the phase from within it.
		{"wrong id over udp, the attempt's deadline first", wrongID, "udp", timeout / 2, sdk.ClassDNSTimeout, "i/o timeout",
			timeout/2 - 10*time.Millisecond, timeout/2 + 60*time.Millisecond},
		{"wrong id over tcp", wrongID, "tcp", 0, sdk.ClassDNSMalformed, "id mismatch", 0, 60 * time.Millisecond},
		{"another question", answer(func(m *dns.Msg) { m.Question[0].Name = "other.test." }), "udp", 0, sdk.ClassDNSMalformed,
			"reply to another question: other.test. A", 0, 60 * time.Millisecond},
		{"another type", answer(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeMX }), "tcp", 0, sdk.ClassDNSMalformed,
			"reply to another question: hostile.test. MX", 0, 60 * time.Millisecond},
		{"two questions", answer(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), "udp", 0,
			sdk.ClassDNSMalformed, "2 questions in the reply", 0, 60 * time.Millisecond},
		{"no question", answer(func(m *dns.Msg) { m.Question = nil }), "udp", 0, "", "", 0, 60 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := lab.StartRawDNS(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			r := newResolver(t, map[string]cty.Value{"servers": strs(srv.Addr), "transport": cty.StringVal(tt.transport),
				"query_types": strs("A"), "timeout": cty.StringVal(timeout.String())})
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			resp, ph := resolve(t, ctx, r, "hostile.test")
			switch {
			case tt.class == "" && resp.Failure != nil:
				t.Errorf("failure %+v, want the address", resp.Failure)
			case tt.class != "" && (resp.Failure == nil || resp.Failure.Class != tt.class || !strings.Contains(resp.Failure.Message, tt.message)):
				t.Errorf("failure %+v, want %s saying %q", resp.Failure, tt.class, tt.message)
			}
			within(t, "the resolve phase", ph.Duration, tt.min, tt.max-tt.min)
		})
	}
}

// TestResolveOutOfDescriptors lowers this process's descriptor limit to 0
// for one resolution: its queries find no socket, and the resolution says so
// as local.fd_limit, not as a failure of the server, and asks no other
// server. A type that found none decides the resolution whatever the other
// types got: its answer is unknown.
func TestResolveOutOfDescriptors(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, map[string]cty.Value{"servers": strs(s.Addr, s.Addr)})
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 0, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	resp, err := r.Resolve(context.Background(), &sdk.ResolveRequest{Host: "api.probe.test", Port: 443})
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatalf("restore RLIMIT_NOFILE: %v", err)
	}
	if err != nil || resp.Failure == nil || resp.Failure.Class != sdk.ClassFDLimit {
		t.Fatalf("Resolve = %+v, %v; want a local.fd_limit failure", resp, err)
	}
	if n := len(tries(resp.Phases[0])); n != 2 {
		t.Errorf("%d queries tried, want one per type: the second server would fare no better", n)
	}

	starved := lookup{fail: &sdk.Failure{Class: sdk.ClassFDLimit}}
	found := lookup{addrs: addrs("127.0.0.1")}
	if got := decide([]lookup{found, starved}); got.fail == nil || got.fail.Class != sdk.ClassFDLimit {
		t.Errorf("decide(addresses, fd limit) = %+v, want the fd limit", got)
	}
}
