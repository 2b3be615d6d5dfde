package icmpecho

import (
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// FuzzMatch hands arbitrary bytes to the reply parser of a raw socket's
// exchange, IPv4 and IPv6, as if any host had sent them: it must never
// panic, and what it takes must name one of the exchange's requests (an
// echo reply with the exchange's identifier and payload, or an error
// message quoting a request).
func FuzzMatch(f *testing.F) {
	payload := []byte("probe")
	for _, m := range []icmp.Message{
		{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 7, Seq: 1, Data: payload}},
		{Type: ipv6.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 7, Seq: 2, Data: payload}},
		{Type: ipv4.ICMPTypeDestinationUnreachable, Code: 1, Body: &icmp.DstUnreach{
			Data: append([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}, 8, 0, 0, 0, 0, 7, 0, 1)}},
	} {
		b, err := m.Marshal(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, m.Type == ipv6.ICMPTypeEchoReply)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		x := &exchange{ep: &endpoint{raw: true, v6: v6}, id: 7, payload: payload, echoes: make([]echo, 3)}
		r, ok := x.match(b, true)
		if !ok {
			return
		}
		if r.unreachable == "" && (r.seq < 1 || r.seq > 3) {
			t.Errorf("took reply %+v: seq outside 1-3", r)
		}
	})
}
