package engine_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

func TestCheckHost(t *testing.T) {
	tests := []struct {
		host string
		want string // in the error; empty for none
	}{
		{"api.example.com", ""},
		{"127.0.0.1", ""},
		{"fe80::1%eth0", ""},
		{"bücher.example", ""},
		{"", "host is empty"},
		{"localhost\x00.corp.example", `"localhost\x00.corp.example" holds a control character (U+0000 at byte 9)`},
		{"\x1b]0;owned\x07api.example.com", `(U+001B at byte 0)`},
		{"api.example.com\n", `(U+000A at byte 15)`},
		{"api\x7f.example.com", `(U+007F at byte 3)`},
		{"api\u009b.example.com", `(U+009B at byte 3)`},
		{"api\xff.example.com", `"api\xff.example.com" is not UTF-8 text`},
	}
	for _, tt := range tests {
		err := engine.CheckHost(tt.host)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckHost(%q) = %v, want nil", tt.host, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckHost(%q) = %v, want an error with %q", tt.host, err, tt.want)
		}
	}
}

// TestControlHostNeverResolved: a NUL cuts a name short for the C library,
// so "localhost\x00.corp.example" would be resolved as localhost by the
// resolver that matches *.corp.example. The engine routes no such host and
// fails its attempt before any resolver runs, whoever built the target.
func TestControlHostNeverResolved(t *testing.T) {
	corp := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	other := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	r1, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "corp", Component: corp}, []string{"*.corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "any", Component: other}, nil)
	p := &engine.Pipeline{Name: "p", Resolvers: []engine.Route{r1, r2},
		Dialer: engine.Stage[sdk.Dialer]{Name: "d", Component: netDialer{}}}
	const host = "localhost\x00.corp.example"
	if r := p.Route(host); r != nil {
		t.Errorf("Route(%q) = %s, want none", host, r.Name)
	}
	a := engine.New(engine.Options{}).Probe(context.Background(), &engine.Target{Name: "t", Host: host, Port: 1, Pipeline: p})
	want := `target "t": host "localhost\x00.corp.example" holds a control character`
	if a.OK || a.Failure == nil || a.Failure.Phase != sdk.PhaseResolve || !strings.Contains(a.Failure.Message, want) {
		t.Errorf("attempt failure %+v, want the resolve phase failed with %q", a.Failure, want)
	}
	if n := corp.calls.Load() + other.calls.Load(); n != 0 {
		t.Errorf("%d resolver calls for a host with a NUL, want none", n)
	}
}
