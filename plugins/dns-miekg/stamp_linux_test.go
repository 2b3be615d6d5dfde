package dnsmiekg

import (
	"net"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// TestReadStamped checks the kernel's stamp as clock = "kernel" reads it:
// a datagram read 20 ms after it arrived is stamped with its arrival, not
// with the read, so a process that could not run for a while once the
// reply came does not count the wait. The kernel turns its stamping on a
// moment after the first socket asks (from a work queue); until then it
// stamps a datagram as it is read. So the test holds the stamping on, as a
// resolver does, and sends until a datagram is stamped on arrival: within
// a second.
func TestReadStamped(t *testing.T) {
	unhold, err := holdStamps()
	if err != nil {
		t.Fatal(err)
	}
	defer unhold()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := stampOn(c); err != nil {
		t.Fatal(err)
	}
	out, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	const wait = 20 * time.Millisecond
	var late []time.Duration // how long before the read each was stamped
	for range 50 {
		sent := time.Now()
		if _, err := out.Write(make([]byte, 12)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(wait)
		p, arrived, err := readStamped(c, 512, sent)
		read := time.Now()
		if err != nil || len(p) != 12 {
			t.Fatalf("readStamped = %d bytes, %v; want the 12 sent", len(p), err)
		}
		if arrived.IsZero() {
			t.Fatal("no stamp on the datagram")
		}
		if arrived.Before(sent) || arrived.After(read) {
			t.Fatalf("stamped %v after the send, the read %v after it: want in between", arrived.Sub(sent), read.Sub(sent))
		}
		if d := read.Sub(arrived); d >= wait {
			if d := arrived.Sub(sent); d > 5*time.Millisecond {
				t.Errorf("stamped %v after the send, want within 5 ms of it (loopback delivers in the send)", d)
			}
			break
		}
		late = append(late, read.Sub(arrived))
	}
	if len(late) == 50 {
		t.Fatalf("no datagram stamped on arrival in 50: stamped %v before the read, want at least the %v each waited", late, wait)
	}
	t.Logf("stamped on arrival after %d stamped as read", len(late))

	// A datagram shorter than a DNS header is dns.ErrShortRead, as
	// miekg/dns's own read says.
	if _, err := out.Write(make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readStamped(c, 512, time.Now()); err == nil {
		t.Error("a 5-byte datagram read without an error")
	}
}

// TestKernelClock resolves through unbound with clock = "kernel": the
// phase says so, ends at the reply's stamp (within the wall time of the
// call, and after the query went out), and its rtt_ms is the stamp's.
func TestKernelClock(t *testing.T) {
	u := startUnbound(t)
	r := newResolver(t, map[string]cty.Value{"servers": strs(u.addr), "query_types": strs("A", "AAAA"), "clock": cty.StringVal(sdk.ClockKernel)})
	defer r.Close()
	for range 3 {
		start := time.Now()
		resp, ph := resolve(t, t.Context(), r, "api.probe.test")
		wall := time.Since(start)
		if resp.Failure != nil {
			t.Fatalf("failure %v", resp.Failure)
		}
		if ph.Attrs["clock"] != sdk.ClockKernel {
			t.Fatalf("clock = %v, want %q", ph.Attrs["clock"], sdk.ClockKernel)
		}
		rtt := time.Duration(ph.Attrs["rtt_ms"].(float64) * float64(time.Millisecond))
		if ph.Duration <= 0 || ph.Duration > wall || rtt <= 0 || rtt > ph.Duration {
			t.Errorf("phase %v, rtt_ms %v, call %v: want 0 < rtt_ms <= phase <= call", ph.Duration, rtt, wall)
		}
	}
}
