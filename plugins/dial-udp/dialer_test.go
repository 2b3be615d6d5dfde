package dialudp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// newDialer builds a dialer through the plugin, as the core does.
func newDialer(t *testing.T, values map[string]cty.Value) (sdk.Dialer, error) {
	t.Helper()
	p := Plugin()
	cfg, err := p.DialerSchema.Config(values)
	if err != nil {
		t.Fatalf("Config(%v): %v", values, err)
	}
	return p.NewDialer(cfg)
}

// TestDial connects a UDP socket to a listening one and sends a datagram
// through it: it arrives from the address the phase reports.
func TestDial(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	for _, tc := range []struct {
		name   string
		values map[string]cty.Value
	}{
		{"default", nil},
		{"source", map[string]cty.Value{"source": cty.StringVal("127.0.0.1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDialer(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: addr, Host: "127.0.0.1"})
			if err != nil || resp.Failure != nil {
				t.Fatalf("Dial = %+v, %v", resp, err)
			}
			defer resp.Conn.Close()
			if _, ok := resp.Conn.(*net.UDPConn); !ok {
				t.Fatalf("Conn is a %T, want a *net.UDPConn", resp.Conn)
			}
			p := resp.Phases[0]
			if len(resp.Phases) != 1 || p.Name != sdk.PhaseConnect || !p.OK || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phases %+v, want one ok connect within 1s", resp.Phases)
			}
			if _, err := resp.Conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 16)
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("read %q, %v; want ping", buf[:n], err)
			}
			want := map[string]any{"local": from.String(), "remote": addr.String()}
			if diff := cmp.Diff(want, p.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		values map[string]cty.Value
		ctx    context.Context
		addr   string
		want   sdk.Class
	}{
		{"canceled", nil, canceled, "127.0.0.1:53", sdk.ClassCanceled},
		// An IPv4 source cannot send to an IPv6 address.
		{"source of the other family", map[string]cty.Value{"source": cty.StringVal("127.0.0.1")}, context.Background(), "[::1]:53", ClassError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDialer(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := d.Dial(tc.ctx, &sdk.DialRequest{Address: netip.MustParseAddrPort(tc.addr)})
			if err != nil {
				t.Fatalf("Dial returned a Go error %v, want a Failure", err)
			}
			if resp.Conn != nil {
				resp.Conn.Close()
				t.Error("Conn is set on a failed dial")
			}
			if resp.Failure == nil || resp.Failure.Class != tc.want || resp.Failure.Phase != sdk.PhaseConnect {
				t.Fatalf("Failure = %+v, want class %s in connect", resp.Failure, tc.want)
			}
			if len(resp.Phases) != 1 || resp.Phases[0].OK {
				t.Errorf("phases %+v, want one failed connect", resp.Phases)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, s := range []string{"localhost", "127.0.0.1:53"} {
		_, err := newDialer(t, map[string]cty.Value{"source": cty.StringVal(s)})
		if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != "source" {
			t.Errorf("New(source = %q) = %v, want an *sdk.AttrError for source", s, err)
		}
	}
}
