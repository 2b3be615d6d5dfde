package dialtcp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
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

func TestDialConnects(t *testing.T) {
	srv, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	tests := []struct {
		name   string
		values map[string]cty.Value
	}{
		{"default", nil},
		{"source", map[string]cty.Value{"source": cty.StringVal("127.0.0.1")}},
		{"timeout", map[string]cty.Value{"timeout": cty.StringVal("2s")}},
		{"kernel clock", map[string]cty.Value{"clock": cty.StringVal("kernel")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDialer(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv.Addr, Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Failure != nil {
				t.Fatalf("Failure = %v, want none", resp.Failure)
			}
			defer resp.Conn.Close()
			if len(resp.Phases) != 1 {
				t.Fatalf("got %d phases, want 1", len(resp.Phases))
			}
			p := resp.Phases[0]
			if p.Name != sdk.PhaseConnect || !p.OK || p.Start < 0 || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phase = %s ok=%v start=%v duration=%v, want ok connect within 1s", p.Name, p.OK, p.Start, p.Duration)
			}
			local := resp.Conn.LocalAddr().(*net.TCPAddr).AddrPort()
			if local.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("local address %s, want 127.0.0.1", local)
			}
			clock := sdk.ClockProcess
			if tc.values["clock"] == cty.StringVal("kernel") {
				clock = sdk.ClockKernel // a connect on loopback never retransmits its SYN
			}
			if diff := cmp.Diff(map[string]any{"local": local.String(), "remote": srv.Addr.String(), "clock": clock}, p.Attrs,
				cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return strings.HasPrefix(k, "kernel_") })); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			rtt, _ := p.Attrs["kernel_rtt_ms"].(float64)
			if rtt <= 0 || rtt > 1000 {
				t.Errorf("kernel_rtt_ms = %v (%T), want a float64 in (0, 1000]", p.Attrs["kernel_rtt_ms"], p.Attrs["kernel_rtt_ms"])
			}
			if v, ok := p.Attrs["kernel_rttvar_ms"].(float64); !ok || v < 0 || v > 1000 {
				t.Errorf("kernel_rttvar_ms = %v (%T), want a float64 in [0, 1000]", p.Attrs["kernel_rttvar_ms"], p.Attrs["kernel_rttvar_ms"])
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	refused := lab.Refused(t)
	srv, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expiring, cancelExpiring := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelExpiring()

	tests := []struct {
		name   string
		values map[string]cty.Value
		ctx    context.Context
		addr   netip.AddrPort
		want   sdk.Class
	}{
		{"refused", nil, context.Background(), refused, sdk.ClassTCPRefused},
		{"canceled", nil, canceled, srv.Addr, sdk.ClassCanceled},
		{"deadline", nil, expiring, srv.Addr, sdk.ClassTCPTimeout},
		{"timeout attribute", map[string]cty.Value{"timeout": cty.StringVal("1ns")}, context.Background(), srv.Addr, sdk.ClassTCPTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDialer(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := d.Dial(tc.ctx, &sdk.DialRequest{Address: tc.addr, Host: "127.0.0.1"})
			if err != nil {
				t.Fatalf("Dial returned a Go error %v, want a Failure", err)
			}
			if resp.Conn != nil {
				resp.Conn.Close()
				t.Error("Conn is set on a failed dial")
			}
			if resp.Failure == nil {
				t.Fatal("Failure = nil")
			}
			if resp.Failure.Phase != sdk.PhaseConnect || resp.Failure.Class != tc.want || resp.Failure.Message == "" {
				t.Errorf("Failure = %+v, want phase connect, class %s and a message", resp.Failure, tc.want)
			}
			if len(resp.Phases) != 1 {
				t.Fatalf("got %d phases, want 1", len(resp.Phases))
			}
			if p := resp.Phases[0]; p.Name != sdk.PhaseConnect || p.OK || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phase = %s ok=%v duration=%v, want a failed connect measured within 1s", p.Name, p.OK, p.Duration)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name, attr, value string
	}{
		{"source host name", "source", "localhost"},
		{"source with port", "source", "127.0.0.1:80"},
		{"timeout garbage", "timeout", "soon"},
		{"timeout negative", "timeout", "-1s"},
		{"clock unknown", "clock", "wall"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newDialer(t, map[string]cty.Value{tc.attr: cty.StringVal(tc.value)})
			ae, ok := sdk.AsAttrError(err)
			if !ok || ae.Attr != tc.attr {
				t.Errorf("New(%s = %q) = %v, want an *sdk.AttrError for %s", tc.attr, tc.value, err, tc.attr)
			}
		})
	}
}
