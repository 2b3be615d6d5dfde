package pluginhost_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/conformance"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/leakcheck"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// The tests run real plugin binaries, built once by TestMain, against one
// loopback lab shared by the whole package.
var (
	// probeBin serves the built-ins as `probe serve-builtin-plugins`.
	probeBin string
	// bannerBin is the third-party example plugin, examples/plugins/banner.
	bannerBin string
	// crashBin serves handshake "crash", which exits on host crash.test.
	crashBin string
	// hangBin serves handshake "hang", which never answers on host hang.test.
	hangBin string
	// envBin serves handshake "env", which reports its process's environment.
	envBin string
	// errBin's components return Go errors (testdata/errplugin).
	errBin string
	// spawnBin starts a helper process that shares its output.
	spawnBin string
	// liarBin's handshake reports impossible phases (testdata/liarplugin).
	liarBin string
	testLab *lab.Lab
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// One go build for all eight, each named after its package's directory.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"../../cmd/probe", "../../examples/plugins/banner", "./testdata/crashplugin", "./testdata/hangplugin",
		"./testdata/envplugin", "./testdata/errplugin", "./testdata/spawnplugin", "./testdata/liarplugin")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n%s", build, err, out)
		return 1
	}
	probeBin, bannerBin = filepath.Join(dir, "probe"), filepath.Join(dir, "banner")
	crashBin, hangBin = filepath.Join(dir, "crashplugin"), filepath.Join(dir, "hangplugin")
	envBin = filepath.Join(dir, "envplugin")
	errBin, spawnBin = filepath.Join(dir, "errplugin"), filepath.Join(dir, "spawnplugin")
	liarBin = filepath.Join(dir, "liarplugin")
	if testLab, err = lab.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testLab.Close()
	return m.Run()
}

// builtinBinary is probe serving its built-ins to itself, as --isolate runs it.
func builtinBinary() pluginhost.Binary {
	return pluginhost.Binary{Name: "builtin", Path: probeBin, Args: []string{"serve-builtin-plugins"}}
}

// newHost returns a plugin host that is closed when the test ends.
func newHost(tb testing.TB) *pluginhost.Host {
	tb.Helper()
	h, err := pluginhost.New(hclog.NewNullLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("close the plugin host: %v", err)
		}
	})
	return h
}

// load loads b into h and returns its plugins by name.
func load(tb testing.TB, h *pluginhost.Host, b pluginhost.Binary) map[string]*sdk.Plugin {
	tb.Helper()
	served, err := h.Load(b)
	if err != nil {
		tb.Fatalf("load %s: %v", b.Path, err)
	}
	out := map[string]*sdk.Plugin{}
	for _, p := range served {
		out[p.Info.Name] = p
	}
	return out
}

// comp is a component of a pipeline: the plugin that serves it and the
// attributes of its block.
type comp struct {
	plugin string
	attrs  map[string]cty.Value
}

// config builds the component's configuration against its schema in p.
func (c comp) config(tb testing.TB, p *sdk.Plugin, k sdk.Kind) cty.Value {
	tb.Helper()
	cfg, err := p.Schema(k).Config(c.attrs)
	if err != nil {
		tb.Fatalf("%s %s: %v", c.plugin, k, err)
	}
	return cfg
}

// spec describes a pipeline: a resolver, a dialer (dial-tcp when unset),
// and handshakes, each named after its plugin.
type spec struct {
	resolver   comp
	dialer     comp
	handshakes []comp
}

// placement says which kinds of component run out of process.
type placement struct {
	name   string
	remote map[sdk.Kind]bool
}

var placements = []placement{
	{"in process", nil},
	{"out of process", map[sdk.Kind]bool{sdk.KindResolver: true, sdk.KindDialer: true, sdk.KindHandshake: true}},
	{"dialer in process", map[sdk.Kind]bool{sdk.KindResolver: true, sdk.KindHandshake: true}},
	{"dialer out of process", map[sdk.Kind]bool{sdk.KindDialer: true}},
}

// build builds s's pipeline from the built-ins in process and the remote
// ones where pl says so.
func (s spec) build(tb testing.TB, pl placement, remote map[string]*sdk.Plugin) *engine.Pipeline {
	tb.Helper()
	local := builtins.Plugins()
	plugin := func(name string, k sdk.Kind) *sdk.Plugin {
		set := local
		if pl.remote[k] {
			set = remote
		}
		p := set[name]
		if p == nil {
			tb.Fatalf("no plugin %s", name)
		}
		return p
	}
	p := &engine.Pipeline{Name: "conformance"}
	rp := plugin(s.resolver.plugin, sdk.KindResolver)
	r, err := rp.NewResolver(s.resolver.config(tb, rp, sdk.KindResolver))
	if err != nil {
		tb.Fatalf("%s: %v", s.resolver.plugin, err)
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: s.resolver.plugin, Plugin: s.resolver.plugin, Component: r}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p.Resolvers = []engine.Route{route}
	dc := s.dialer
	if dc.plugin == "" {
		dc.plugin = "dial-tcp"
	}
	dp := plugin(dc.plugin, sdk.KindDialer)
	d, err := dp.NewDialer(dc.config(tb, dp, sdk.KindDialer))
	if err != nil {
		tb.Fatalf("%s: %v", dc.plugin, err)
	}
	p.Dialer = engine.Stage[sdk.Dialer]{Name: dc.plugin, Plugin: dc.plugin, Component: d}
	for _, c := range s.handshakes {
		hp := plugin(c.plugin, sdk.KindHandshake)
		h, err := hp.NewHandshaker(c.config(tb, hp, sdk.KindHandshake))
		if err != nil {
			tb.Fatalf("%s: %v", c.plugin, err)
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: c.plugin, Plugin: c.plugin, Component: h})
	}
	return p
}

// outcome is what must be the same in and out of process.
type outcome struct {
	OK     bool
	Class  sdk.Class
	Phase  string   // the failed phase
	Phases []string // in order
	// Attrs are each phase's attrs without the values that differ from
	// one attempt to the next (timings, the local port).
	Attrs map[string]map[string]any
	// Keys are each phase's attribute names, all of them.
	Keys map[string][]string
}

func outcomeOf(a engine.Attempt) outcome {
	o := outcome{OK: a.OK, Attrs: map[string]map[string]any{}, Keys: map[string][]string{}}
	if a.Failure != nil {
		o.Class, o.Phase = a.Failure.Class, a.Failure.Phase
	}
	for _, p := range a.Phases {
		o.Phases = append(o.Phases, p.Name)
		o.Attrs[p.Name] = stable(p.Attrs)
		o.Keys[p.Name] = slices.Sorted(maps.Keys(p.Attrs))
	}
	return o
}

// stable returns attrs without the entries that vary between attempts:
// durations ("*_ms"), the local address and verify_error (an expired
// certificate's error quotes the current time), also in nested maps, and
// lists sorted.
func stable(attrs map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range attrs {
		if strings.HasSuffix(k, "_ms") || k == "local" || k == "verify_error" {
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			out[k] = stable(v)
		case []any:
			var list []any
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					e = stable(m)
				}
				list = append(list, e)
			}
			// In the order of the values: concurrent queries (dns-miekg's
			// tries) list in the order they finished.
			slices.SortFunc(list, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			out[k] = list
		default:
			out[k] = v
		}
	}
	return out
}

// checkAttempt checks what holds for every attempt
// (conformance.AttemptProblems).
func checkAttempt(t *testing.T, a engine.Attempt) {
	t.Helper()
	for _, p := range conformance.AttemptProblems(a) {
		t.Error(p)
	}
}

func probeOnce(t testing.TB, p *engine.Pipeline, host string, port uint16, timeout time.Duration) engine.Attempt {
	t.Helper()
	eng := engine.New(engine.Options{Timeout: timeout})
	return eng.Probe(t.Context(), &engine.Target{Name: host, Host: host, Port: port, Pipeline: p})
}

// TestConformance runs each case with every built-in in process, out of
// process (the probe binary serving them over go-plugin), and mixed, and
// wants the same outcome from all.
func TestConformance(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	miekg := comp{"dns-miekg", map[string]cty.Value{
		"servers": cty.ListVal([]cty.Value{cty.StringVal(testLab.DNS.Addr)}), "timeout": cty.StringVal("2s")}}
	system := comp{plugin: "dns-system"}
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	http := comp{plugin: "http"}
	icmp := comp{"icmp", map[string]cty.Value{"count": cty.NumberIntVal(2), "interval": cty.StringVal("1ms")}}
	grpcPlain, grpcTLS := startHealthServers(t)
	h2 := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile), "alpn": cty.ListVal([]cty.Value{cty.StringVal("h2")})}}
	grpcAPI := comp{"grpc-health", map[string]cty.Value{"service": cty.StringVal("api")}}
	grpcBatch := comp{"grpc-health", map[string]cty.Value{"service": cty.StringVal("batch")}}
	caddy := startCaddy(t)
	quicDial := comp{"quic", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	h3 := comp{plugin: "http3"}
	d := startDaemons(t)
	ssh := comp{plugin: "ssh"}
	sshPinned := comp{"ssh", map[string]cty.Value{"host_key_fingerprint": cty.StringVal("SHA256:" + strings.Repeat("A", 43))}}
	smtp := comp{"starttls", map[string]cty.Value{"protocol": cty.StringVal("smtp")}}
	smtpQuick := comp{"starttls", map[string]cty.Value{"protocol": cty.StringVal("smtp"), "timeout": cty.StringVal("200ms")}}
	pgSSL := comp{"starttls", map[string]cty.Value{"protocol": cty.StringVal("postgres")}}
	udp := comp{plugin: "dial-udp"}
	// A DNS query for api.probe.test's A record, ID 0x1234.
	dnsQuery := comp{"udp-payload", map[string]cty.Value{
		"payload_hex": cty.StringVal("1234 0100 0001 0000 0000 0000 03617069 0570726f6265 0474657374 00 0001 0001"),
		"expect":      cty.StringVal(`^\x12\x34[\x80-\xff]`), "timeout": cty.StringVal("2s")}}
	tests := []struct {
		name string
		spec spec
		host string
		port uint16
		want outcome // OK, Class, Phase and Phases
		// attrs are attribute values the in-process run must report, by phase.
		attrs map[string]map[string]any
		// together: the dialer and the handshakes must share a process
		// (a QUIC connection does not travel): no mixed placements.
		together bool
	}{
		{
			name: "dns-miekg resolves", spec: spec{resolver: miekg}, host: "api.probe.test", port: testLab.TCP.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect"}},
			attrs: map[string]map[string]any{"resolve": {"addresses": []string{"127.0.0.1"}, "rcode": "NOERROR", "server": testLab.DNS.Addr}},
		},
		{
			name: "dns-miekg nxdomain", spec: spec{resolver: miekg}, host: "nope.probe.test", port: testLab.TCP.Addr.Port(),
			want:  outcome{Class: sdk.ClassDNSNXDomain, Phase: "resolve", Phases: []string{"resolve"}},
			attrs: map[string]map[string]any{"resolve": {"rcode": "NXDOMAIN"}},
		},
		{
			name: "dns-system literal", spec: spec{resolver: system}, host: "127.0.0.1", port: testLab.TCP.Addr.Port(),
			want: outcome{OK: true, Phases: []string{"resolve", "connect"}},
			attrs: map[string]map[string]any{
				"resolve": {"addresses": []string{"127.0.0.1"}, "literal": true},
				"connect": {"remote": testLab.TCP.Addr.String()},
			},
		},
		{
			name: "dial-tcp refused", spec: spec{resolver: system}, host: "127.0.0.1", port: testLab.Refused.Port(),
			want: outcome{Class: sdk.ClassTCPRefused, Phase: "connect", Phases: []string{"resolve", "connect"}},
		},
		{
			name: "tls verified", spec: spec{resolver: miekg, handshakes: []comp{tls}}, host: "api.probe.test", port: testLab.TLS.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect", "tls"}},
			attrs: map[string]map[string]any{"tls": {"version": "TLS 1.3", "verified": true}},
		},
		{
			name: "tls expired", spec: spec{resolver: miekg, handshakes: []comp{tls}}, host: "expired.probe.test", port: testLab.Expired.Addr.Port(),
			want: outcome{Class: sdk.ClassTLSCertExpired, Phase: "tls", Phases: []string{"resolve", "connect", "tls"}},
		},
		{
			name: "icmp echo", spec: spec{resolver: system, dialer: icmp}, host: "127.0.0.1", port: 1,
			want:  outcome{OK: true, Phases: []string{"resolve", "icmp"}},
			attrs: map[string]map[string]any{"icmp": {"sent": 2, "received": 2, "loss_percent": 0.0, "ttl": 64, "remote": "127.0.0.1"}},
		},
		{
			name: "grpc-health plain", spec: spec{resolver: system, handshakes: []comp{grpcAPI}}, host: "127.0.0.1", port: grpcPlain.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect", "grpc"}},
			attrs: map[string]map[string]any{"grpc": {"status": "SERVING", "code": "OK", "service": "api"}},
		},
		{
			name: "grpc-health over tls", spec: spec{resolver: miekg, handshakes: []comp{h2, grpcAPI}}, host: "api.probe.test", port: grpcTLS.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect", "tls", "grpc"}},
			attrs: map[string]map[string]any{"tls": {"alpn": "h2"}, "grpc": {"status": "SERVING", "authority": "api.probe.test:" + fmt.Sprint(grpcTLS.Addr.Port())}},
		},
		{
			name: "grpc-health not serving", spec: spec{resolver: miekg, handshakes: []comp{h2, grpcBatch}}, host: "api.probe.test", port: grpcTLS.Addr.Port(),
			want:  outcome{Class: "grpc.not_serving", Phase: "grpc", Phases: []string{"resolve", "connect", "tls", "grpc"}},
			attrs: map[string]map[string]any{"grpc": {"status": "NOT_SERVING"}},
		},
		{
			name: "quic", spec: spec{resolver: miekg, dialer: quicDial}, host: "api.probe.test", port: caddy.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "quic"}},
			attrs: map[string]map[string]any{"quic": {"version": "TLS 1.3", "alpn": "h3", "quic_version": "v1", "verified": true}},
		},
		{
			name: "http3 over quic", spec: spec{resolver: miekg, dialer: quicDial, handshakes: []comp{h3}}, host: "api.probe.test", port: caddy.Addr.Port(),
			want:     outcome{OK: true, Phases: []string{"resolve", "quic", "http3"}},
			attrs:    map[string]map[string]any{"http3": {"status": 200, "proto": "HTTP/3.0"}},
			together: true,
		},
		{
			name: "http over tls", spec: spec{resolver: miekg, handshakes: []comp{tls, http}}, host: "api.probe.test", port: testLab.TLS.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect", "tls", "http"}},
			attrs: map[string]map[string]any{"http": {"status": 200}},
		},
		{
			name: "ssh host key", spec: spec{resolver: system, handshakes: []comp{ssh}}, host: "127.0.0.1", port: d.sshd.Addr.Port(),
			want: outcome{OK: true, Phases: []string{"resolve", "connect", "ssh"}},
			attrs: map[string]map[string]any{"ssh": {"host_key_type": "ssh-ed25519", "host_key_fingerprint": d.sshd.HostKeyFingerprint,
				"kex": "curve25519-sha256"}},
		},
		{
			name: "ssh host key mismatch", spec: spec{resolver: system, handshakes: []comp{sshPinned}}, host: "127.0.0.1", port: d.sshd.Addr.Port(),
			want:  outcome{Class: "ssh.host_key_mismatch", Phase: "ssh", Phases: []string{"resolve", "connect", "ssh"}},
			attrs: map[string]map[string]any{"ssh": {"host_key_fingerprint": d.sshd.HostKeyFingerprint}},
		},
		{
			name: "starttls smtp then tls", spec: spec{resolver: system, handshakes: []comp{smtp, tls}}, host: "127.0.0.1", port: d.exim.Addr.Port(),
			want: outcome{OK: true, Phases: []string{"resolve", "connect", "starttls", "tls"}},
			attrs: map[string]map[string]any{"starttls": {"protocol": "smtp", "reply": "220 TLS go ahead"},
				"tls": {"verified": true, "cert_subject": "CN=mail.probe.test"}},
		},
		{
			name: "starttls postgres then tls", spec: spec{resolver: system, handshakes: []comp{pgSSL, tls}}, host: "127.0.0.1", port: d.postgres.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect", "starttls", "tls"}},
			attrs: map[string]map[string]any{"starttls": {"protocol": "postgres", "reply": "S"}, "tls": {"verified": true}},
		},
		{
			name: "starttls smtp at postgres", spec: spec{resolver: system, handshakes: []comp{smtpQuick, tls}}, host: "127.0.0.1", port: d.postgres.Addr.Port(),
			want: outcome{Class: "starttls.timeout", Phase: "starttls", Phases: []string{"resolve", "connect", "starttls"}},
		},
		{
			name: "udp-payload dns query", spec: spec{resolver: system, dialer: udp, handshakes: []comp{dnsQuery}}, host: "127.0.0.1", port: d.unbound.Addr.Port(),
			want: outcome{OK: true, Phases: []string{"resolve", "connect", "udp"}},
			// unbound's answer: 127.0.0.1, TTL 60.
			attrs: map[string]map[string]any{"udp": {"request_bytes": 32, "reply_bytes": 48,
				"reply_hex": "123485800001000100000000036170690570726f626504746573740000010001c00c000100010000003c00047f000001"}},
		},
		{
			name: "udp-payload refused", spec: spec{resolver: system, dialer: udp, handshakes: []comp{dnsQuery}}, host: "127.0.0.1", port: d.closedUDP.Port(),
			want: outcome{Class: "udp.refused", Phase: "udp", Phases: []string{"resolve", "connect", "udp"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPlacements(t, func(t *testing.T, pl placement) engine.Attempt {
				return probeOnce(t, tt.spec.build(t, pl, remote), tt.host, tt.port, 5*time.Second)
			}, func(pl placement) bool {
				return tt.together && pl.remote[sdk.KindDialer] != pl.remote[sdk.KindHandshake] // TestQUICStaysInItsProcess
			}, tt.want, tt.attrs)
		})
	}
}

// checkPlacements runs probe once per placement but those skip leaves out:
// the first placement's outcome (all in process) must be want, with attrs
// among its attributes, and every other placement's the same.
func checkPlacements(t *testing.T, probe func(*testing.T, placement) engine.Attempt, skip func(placement) bool, want outcome, attrs map[string]map[string]any) {
	t.Helper()
	var ref outcome
	for i, pl := range placements {
		if skip(pl) {
			continue
		}
		t.Run(pl.name, func(t *testing.T) {
			a := probe(t, pl)
			checkAttempt(t, a)
			got := outcomeOf(a)
			if i == 0 {
				ref = got
				want.Attrs, want.Keys = got.Attrs, got.Keys
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("outcome (-want +got):\n%s\nfailure: %+v", diff, a.Failure)
				}
				for phase, attrs := range attrs {
					for k, v := range attrs {
						if diff := cmp.Diff(v, got.Attrs[phase][k]); diff != "" {
							t.Errorf("%s attr %s (-want +got):\n%s", phase, k, diff)
						}
					}
				}
				return
			}
			if diff := cmp.Diff(ref, got); diff != "" {
				t.Errorf("outcome differs from in process (-in process +%s):\n%s\nfailure: %+v", pl.name, diff, a.Failure)
			}
		})
	}
}

// TestTLSTiming checks that a TLS handshake out of process is measured on
// the handed-off socket: the lab's SlowTLS server holds its first flight
// 40 ms, and the handshakes take no longer than in process (a byte proxy
// would add its round trips). They may take less: under -race the handshake
// in this process is instrumented, the plugin binary's is not. The fastest
// handshakes are compared as well as the medians: a busy machine delays
// some attempts of either kind.
func TestTLSTiming(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	s := spec{resolver: comp{plugin: "dns-system"}, handshakes: []comp{tls}}
	in, out := s.build(t, placements[0], remote), s.build(t, placements[1], remote)
	const n = 7
	var inMS, outMS []float64
	tlsMS := func(p *engine.Pipeline) float64 {
		a := probeOnce(t, p, "127.0.0.1", testLab.SlowTLS.Addr.Port(), 5*time.Second)
		if !a.OK || len(a.Phases) != 3 {
			t.Fatalf("attempt failed: %+v", a.Failure)
		}
		return float64(a.Phases[2].Duration) / float64(time.Millisecond)
	}
	for range n { // interleaved, so that both see the same load
		inMS = append(inMS, tlsMS(in))
		outMS = append(outMS, tlsMS(out))
	}
	slices.Sort(inMS)
	slices.Sort(outMS)
	if outMS[0] < 40 || inMS[0] < 40 {
		t.Errorf("tls took %v ms in process, %v ms out of process; want each >= 40 ms", inMS, outMS)
	}
	if med := outMS[n/2]; med >= 40+25 || med > inMS[n/2]+5 || outMS[0] > inMS[0]+3 {
		t.Errorf("tls took %v ms out of process, %v ms in process; want the median under 65 ms and at most 5 ms "+
			"over the median in process, the fastest at most 3 ms over the fastest in process", outMS, inMS)
	}
}

// ctyComparer compares cty types and values, nil included.
var ctyComparer = cmp.Options{
	cmp.Comparer(func(a, b cty.Type) bool {
		if a == cty.NilType || b == cty.NilType {
			return a == b
		}
		return a.Equals(b)
	}),
	cmp.Comparer(func(a, b cty.Value) bool {
		if a.Type() == cty.NilType || b.Type() == cty.NilType {
			return a.Type() == b.Type()
		}
		return a.RawEquals(b)
	}),
}

// TestSchemaAcrossTheWire checks that every built-in's info and schemas come
// back from the plugin binary as they are in process, and that a
// constructor's validation error reaches the host as an *sdk.AttrError.
func TestSchemaAcrossTheWire(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	local := builtins.Plugins()
	if diff := cmp.Diff(slices.Sorted(maps.Keys(local)), slices.Sorted(maps.Keys(remote))); diff != "" {
		t.Fatalf("plugins served (-in process +out of process):\n%s", diff)
	}
	for name, lp := range local {
		rp := remote[name]
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(lp.Info, rp.Info); diff != "" {
				t.Errorf("info (-in process +out of process):\n%s", diff)
			}
			if diff := cmp.Diff(lp.Kinds(), rp.Kinds()); diff != "" {
				t.Errorf("kinds (-in process +out of process):\n%s", diff)
			}
			if lp.DialerConn != rp.DialerConn {
				t.Errorf("dialer conn %q in process, %q out of process", lp.DialerConn, rp.DialerConn)
			}
			for _, k := range lp.Kinds() {
				if diff := cmp.Diff(lp.Schema(k), rp.Schema(k), ctyComparer); diff != "" {
					t.Errorf("%s schema (-in process +out of process):\n%s", k, diff)
				}
			}
		})
	}
	t.Run("attribute error", func(t *testing.T) {
		attrs := map[string]cty.Value{
			"servers":   cty.ListVal([]cty.Value{cty.StringVal(testLab.DNS.Addr)}),
			"transport": cty.StringVal("carrier-pigeon"),
		}
		errOf := func(p *sdk.Plugin) error {
			_, err := p.NewResolver(comp{"dns-miekg", attrs}.config(t, p, sdk.KindResolver))
			return err
		}
		want, got := errOf(local["dns-miekg"]), errOf(remote["dns-miekg"])
		ae, ok := got.(*sdk.AttrError)
		if !ok || ae.Attr != "transport" {
			t.Fatalf("remote constructor returned %T %v, want an *sdk.AttrError for transport", got, got)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("error (-in process +out of process):\n%s", diff)
		}
	})
}

// staticResolver answers 127.0.0.1 for every host, so that the crash and
// hang tests can use names no DNS server knows.
type staticResolver struct{}

func (staticResolver) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// misbehaving loads the plugin binary path, which serves one handshake
// plugin called name, and returns a pipeline of a static resolver,
// dial-tcp in process and that handshake out of process.
func misbehaving(t *testing.T, h *pluginhost.Host, path, name string) *engine.Pipeline {
	t.Helper()
	return handshakePipeline(t, h, pluginhost.Binary{Name: name, Path: path})
}

// handshakePipeline loads b, which serves one handshake plugin called
// b.Name, and returns a pipeline of a static resolver, dial-tcp in process
// and that handshake out of process.
func handshakePipeline(t *testing.T, h *pluginhost.Host, b pluginhost.Binary) *engine.Pipeline {
	t.Helper()
	name := b.Name
	pl := load(t, h, b)[name]
	if pl == nil {
		t.Fatalf("%s serves no plugin %s", b.Path, name)
	}
	hs, err := pl.NewHandshaker(cty.EmptyObjectVal)
	if err != nil {
		t.Fatal(err)
	}
	dp := builtins.Plugins()["dial-tcp"]
	d, err := dp.NewDialer(comp{}.config(t, dp, sdk.KindDialer))
	if err != nil {
		t.Fatal(err)
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: staticResolver{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Pipeline{
		Name:       name,
		Resolvers:  []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "dial-tcp", Component: d},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: name, Plugin: name, Component: hs}},
	}
}

// onePid returns the pid of h's only plugin process.
func onePid(t *testing.T, h *pluginhost.Host) int {
	t.Helper()
	pids := h.Pids()
	if len(pids) != 1 {
		t.Fatalf("plugin processes %v, want one", pids)
	}
	return pids[0]
}

// wantOK checks that a succeeded, and that the handshake's process (which
// reports its pid) is pid.
func wantOK(t *testing.T, a engine.Attempt, pid int) {
	t.Helper()
	checkAttempt(t, a)
	if !a.OK {
		t.Fatalf("attempt failed: %+v", a.Failure)
	}
	if got := a.Phases[2].Attrs["pid"]; got != pid {
		t.Errorf("handshake ran in process %v (%T), want %d", got, got, pid)
	}
}

// wantCrashed checks that a failed as plugin.crashed in phase.
func wantCrashed(t *testing.T, a engine.Attempt, phase string) {
	t.Helper()
	checkAttempt(t, a)
	if a.Failure == nil || a.Failure.Class != sdk.ClassPluginCrashed || a.Failure.Phase != phase {
		t.Fatalf("failure %+v, want %s in phase %s", a.Failure, sdk.ClassPluginCrashed, phase)
	}
}

// recovers probes ok.test right after the plugin crashed or hung: the
// attempt waits for the restart backoff and succeeds in a new process. It
// returns how long the attempt took.
func recovers(t *testing.T, h *pluginhost.Host, p *engine.Pipeline, old int) time.Duration {
	t.Helper()
	start := time.Now()
	a := probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 2*time.Second)
	took := time.Since(start)
	if !a.OK {
		t.Fatalf("the attempt after the crash failed: %+v", a.Failure)
	}
	pid := onePid(t, h)
	if pid == old {
		t.Fatalf("plugin process %d still runs, want a new one", pid)
	}
	wantOK(t, a, pid)
	return took
}

// outOfProcess are the two ways a misbehaving test handshake runs out of
// process: alone, with the resolver and dialer in probe, so that it fails in
// its own phase; or with them in its process, the attempt one request on a
// Sequences stream, failing in resolve with a message that says so.
var outOfProcess = []struct {
	name  string
	build func(t *testing.T, h *pluginhost.Host, path, name string) *engine.Pipeline
	whole bool
}{
	{"handshake", misbehaving, false},
	{"whole attempt", sequencePipeline, true},
}

// failedPhase is where an attempt of the handshake name fails when its
// plugin process crashes or hangs.
func failedPhase(name string, whole bool) string {
	if whole {
		return sdk.PhaseResolve
	}
	return name
}

// wantFailedIn checks that a failed as plugin.crashed in phase and, for a
// whole attempt in one request, that its message says so.
func wantFailedIn(t *testing.T, a engine.Attempt, phase string, whole bool) {
	t.Helper()
	wantCrashed(t, a, phase)
	if whole && !strings.Contains(a.Failure.Message, "the whole attempt ran as one request") {
		t.Errorf("failure message %q does not say the attempt ran as one request", a.Failure.Message)
	}
}

func TestCrash(t *testing.T) {
	for _, o := range outOfProcess {
		t.Run(o.name, func(t *testing.T) {
			h := newHost(t)
			p := o.build(t, h, crashBin, "crash")
			phase := failedPhase("crash", o.whole)
			port := testLab.TCP.Addr.Port()
			wantOK(t, probeOnce(t, p, "ok.test", port, 2*time.Second), onePid(t, h))
			pid := onePid(t, h)

			wantFailedIn(t, probeOnce(t, p, "crash.test", port, 2*time.Second), phase, o.whole)
			if d := recovers(t, h, p, pid); d < 50*time.Millisecond || d > 500*time.Millisecond {
				t.Errorf("the attempt after the crash took %v, want its 100 ms backoff and a start", d)
			}

			// A second crash right after the restart doubles the backoff, to 200 ms.
			pid = onePid(t, h)
			wantFailedIn(t, probeOnce(t, p, "crash.test", port, 2*time.Second), phase, o.whole)
			if d := recovers(t, h, p, pid); d < 150*time.Millisecond || d > 600*time.Millisecond {
				t.Errorf("the attempt after a second crash took %v, want its 200 ms backoff and a start", d)
			}
		})
	}
}

// TestKilled SIGKILLs the plugin between attempts of a run: the attempt
// that finds it dead fails as plugin.crashed, the later ones succeed in a
// new process.
func TestKilled(t *testing.T) {
	h := newHost(t)
	p := misbehaving(t, h, crashBin, "crash")
	port := testLab.TCP.Addr.Port()
	const n, killAt = 8, 3
	var pid int
	var outcomes []string
	for i := range n {
		if i == killAt {
			pid = onePid(t, h)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		a := probeOnce(t, p, "ok.test", port, 2*time.Second)
		checkAttempt(t, a)
		switch {
		case a.OK:
			outcomes = append(outcomes, "ok")
		case a.Failure.Class == sdk.ClassPluginCrashed && a.Failure.Phase == "crash":
			outcomes = append(outcomes, string(a.Failure.Class))
		default:
			t.Fatalf("attempt %d: failure %+v, want none or %s", i, a.Failure, sdk.ClassPluginCrashed)
		}
		time.Sleep(150 * time.Millisecond) // longer than the first restart backoff
	}
	want := slices.Repeat([]string{"ok"}, n)
	if outcomes[killAt] != "ok" { // the kill was not noticed before the attempt
		want[killAt] = string(sdk.ClassPluginCrashed)
	}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if now := onePid(t, h); now == pid {
		t.Errorf("plugin process %d was killed, yet it is still the plugin's", pid)
	}
}

func TestHang(t *testing.T) {
	for _, o := range outOfProcess {
		t.Run(o.name, func(t *testing.T) {
			h := newHost(t)
			p := o.build(t, h, hangBin, "hang")
			phase := failedPhase("hang", o.whole)
			port := testLab.TCP.Addr.Port()
			pid := onePid(t, h)
			wantOK(t, probeOnce(t, p, "ok.test", port, 2*time.Second), pid)

			start := time.Now()
			a := probeOnce(t, p, "hang.test", port, 300*time.Millisecond)
			elapsed := time.Since(start)
			wantFailedIn(t, a, phase, o.whole)
			if !strings.Contains(a.Failure.Message, "hung") {
				t.Errorf("failure message %q does not say the plugin hung", a.Failure.Message)
			}
			if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
				t.Errorf("the hung attempt ended after %v, want the 300 ms timeout plus the hang grace, under 2 s", elapsed)
			}
			if d := recovers(t, h, p, pid); d > time.Second {
				t.Errorf("the plugin came back after %v, want within 1 s", d)
			}
		})
	}
}

// killFirst SIGKILLs a plugin process, waits until it is gone, and then
// runs its handshake.
type killFirst struct {
	pid  int
	next sdk.Handshaker
}

func (k killFirst) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	if err := syscall.Kill(k.pid, syscall.SIGKILL); err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", k.pid)); os.IsNotExist(err) {
			break // reaped: the host can tell it exited
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	return k.next.Handshake(ctx, req)
}

// TestRestartBetweenHandshakes kills the process that holds a TLS
// connection before the HTTP handshake that would run in it: that attempt
// fails as plugin.crashed, and the new process is left alone.
func TestRestartBetweenHandshakes(t *testing.T) {
	h := newHost(t)
	remote := load(t, h, builtinBinary())
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	s := spec{resolver: comp{plugin: "dns-system"}, handshakes: []comp{tls, {plugin: "http"}}}
	p := s.build(t, placements[2], remote)
	port := testLab.TLS.Addr.Port()
	killed := onePid(t, h)
	killing := *p
	killing.Handshakes = slices.Clone(p.Handshakes)
	killing.Handshakes[1].Component = killFirst{pid: killed, next: p.Handshakes[1].Component}

	a := probeOnce(t, &killing, "127.0.0.1", port, 5*time.Second)
	wantCrashed(t, a, "http")
	if !strings.Contains(a.Failure.Message, "restarted") {
		t.Errorf("failure %q, want it to say the plugin was restarted", a.Failure.Message)
	}
	restarted := onePid(t, h)
	if restarted == killed {
		t.Fatalf("plugin process %d was killed, yet it is still the plugin's", killed)
	}
	if a := probeOnce(t, p, "127.0.0.1", port, 5*time.Second); !a.OK {
		t.Fatalf("attempt after the restart failed: %+v", a.Failure)
	}
	if pid := onePid(t, h); pid != restarted {
		t.Errorf("plugin process %d replaced by %d, want the restarted one kept", restarted, pid)
	}
}

// sha256File returns the hex SHA-256 of the file at path.
func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeExe writes a shell script that does nothing to path, with mode.
func writeExe(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestChecksum(t *testing.T) {
	right := sha256File(t, bannerBin)
	wrong := strings.Repeat("0", 64)
	t.Run("wrong pin", func(t *testing.T) {
		// A script that would leave a mark if it ran.
		dir := t.TempDir()
		script, mark := filepath.Join(dir, "probe-plugin-mark"), filepath.Join(dir, "ran")
		if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		for _, b := range []pluginhost.Binary{
			{Name: "banner", Path: bannerBin, SHA256: wrong},
			{Name: "mark", Path: script, SHA256: wrong},
		} {
			_, err := h.Load(b)
			if err == nil || !strings.Contains(err.Error(), "sha256 pin "+wrong) {
				t.Errorf("load %s with a wrong pin: error %v, want one naming the pin", b.Name, err)
			}
		}
		if pids := h.Pids(); len(pids) != 0 {
			t.Errorf("plugin processes %v, want none", pids)
		}
		if _, err := os.Stat(mark); !os.IsNotExist(err) {
			t.Errorf("the pinned script ran (stat %s: %v)", mark, err)
		}
	})
	t.Run("right pin", func(t *testing.T) {
		h := newHost(t)
		pl := load(t, h, pluginhost.Binary{Name: "banner", Path: bannerBin, SHA256: right})["banner"]
		if pl == nil || pl.Info.Version != "1.0.0" || !pl.Serves(sdk.KindHandshake) {
			t.Fatalf("banner: %+v, want version 1.0.0 serving a handshake", pl)
		}
		onePid(t, h)
	})
	t.Run("uppercase pin", func(t *testing.T) {
		load(t, newHost(t), pluginhost.Binary{Name: "banner", Path: bannerBin, SHA256: strings.ToUpper(right)})
	})
	t.Run("pin after an unpinned load", func(t *testing.T) {
		// A pin must be checked even when the same binary already runs
		// without one.
		h := newHost(t)
		load(t, h, pluginhost.Binary{Name: "banner", Path: bannerBin})
		if _, err := h.Load(pluginhost.Binary{Name: "banner", Path: bannerBin, SHA256: wrong}); err == nil {
			t.Error("a wrong pin was accepted for a binary already running")
		}
		load(t, h, pluginhost.Binary{Name: "banner", Path: bannerBin, SHA256: right})
	})
	t.Run("malformed pin", func(t *testing.T) {
		_, err := newHost(t).Load(pluginhost.Binary{Name: "banner", Path: bannerBin, SHA256: "abc"})
		if err == nil || !strings.Contains(err.Error(), `"abc" is not a hex SHA-256 digest`) {
			t.Errorf("error %v, want one saying the pin is malformed", err)
		}
	})
}

func TestCheckBinary(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		mode    os.FileMode
		problem string // "" when it may run
	}{
		{"owner only", 0o700, ""},
		{"world readable", 0o755, ""},
		{"writable by others", 0o777, "is writable by group or others (mode -rwxrwxrwx); refusing to run it"},
		{"writable by group", 0o775, "is writable by group or others (mode -rwxrwxr-x); refusing to run it"},
		{"not executable", 0o644, "is not executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			writeExe(t, path, tt.mode)
			err := pluginhost.CheckBinary(path)
			switch {
			case tt.problem == "" && err != nil:
				t.Errorf("CheckBinary: %v, want nil", err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), path+" "+tt.problem)):
				t.Errorf("CheckBinary: %v, want %q", err, tt.problem)
			}
		})
	}
	// Where anyone may replace the file, its own mode says nothing: a
	// directory writable by others is refused, unless it is sticky (as /tmp),
	// where only a file's owner may rename or remove it.
	for _, d := range []struct {
		mode    os.FileMode
		problem string
	}{
		{0o777, "a directory writable by group or others (mode -rwxrwxrwx) where anyone could replace it; refusing to run it"},
		{0o775, "a directory writable by group or others (mode -rwxrwxr-x) where anyone could replace it; refusing to run it"},
		{0o777 | os.ModeSticky, ""},
	} {
		sub, err := os.MkdirTemp(dir, "dir")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(sub, "plugin")
		writeExe(t, path, 0o755)
		if err := os.Chmod(sub, d.mode); err != nil {
			t.Fatal(err)
		}
		err = pluginhost.CheckBinary(path)
		switch {
		case d.problem == "" && err != nil:
			t.Errorf("CheckBinary in a directory of mode %v: %v, want nil", d.mode, err)
		case d.problem != "" && (err == nil || !strings.Contains(err.Error(), "is in "+sub+", "+d.problem)):
			t.Errorf("CheckBinary in a directory of mode %v: %v, want %q", d.mode, err, d.problem)
		}
	}
	// A file someone else owns is theirs to change. Only root can give a
	// file away: CI runs as root.
	if os.Geteuid() == 0 {
		path := filepath.Join(dir, "owned-by-nobody")
		writeExe(t, path, 0o755)
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := pluginhost.CheckBinary(path); err == nil || !strings.Contains(err.Error(), path+" is owned by uid 65534, neither root nor this user (uid 0); refusing to run it") {
			t.Errorf("CheckBinary(a file of uid 65534): %v, want refused for its owner", err)
		}
	}
	if err := pluginhost.CheckBinary(dir); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("CheckBinary(a directory): %v, want not a regular file", err)
	}
	if err := pluginhost.CheckBinary(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("CheckBinary(a missing file): %v, want not exist", err)
	}
}

func TestDiscovery(t *testing.T) {
	dir := t.TempDir()
	banner, noexec := filepath.Join(dir, "probe-plugin-banner"), filepath.Join(dir, "probe-plugin-noexec")
	writeExe(t, banner, 0o755)
	writeExe(t, noexec, 0o644)
	writeExe(t, filepath.Join(dir, "not-a-plugin"), 0o755)
	t.Setenv(pluginhost.PathEnv, dir)

	if got, err := pluginhost.Find("banner"); err != nil || got != banner {
		t.Errorf("Find(banner) = %q, %v; want %q", got, err, banner)
	}
	if _, err := pluginhost.Find("noexec"); err == nil || !strings.Contains(err.Error(), noexec+" is not executable") {
		t.Errorf("Find(noexec): %v, want not executable", err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, err = pluginhost.Find("missing")
	searched := "no probe-plugin-missing in " + dir + " (PROBE_PLUGIN_PATH), " + filepath.Dir(exe) + " (next to probe), " +
		filepath.Join(home, ".probe", "plugins") + " (~/.probe/plugins); "
	if want := searched + "put it in one of those directories, add its directory to PROBE_PLUGIN_PATH, " +
		"or give the plugin block a source"; err == nil || err.Error() != want {
		t.Errorf("Find(missing):\n%v\nwant:\n%s", err, want)
	}
	var nf *pluginhost.NotFoundError
	if !errors.As(err, &nf) || nf.Name != "missing" || !cmp.Equal(nf.Tried, pluginhost.SearchPath()) {
		t.Fatalf("Find(missing): %#v, want a NotFoundError naming the search path", err)
	}
	nf.Build = "`make plugins`"
	if want := searched + "build it with `make plugins`, or put it in one of those directories, " +
		"add its directory to PROBE_PLUGIN_PATH, or give the plugin block a source"; nf.Error() != want {
		t.Errorf("with Build:\n%s\nwant:\n%s", nf, want)
	}
	var got []pluginhost.Candidate
	for _, c := range pluginhost.Discover() {
		if filepath.Dir(c.Path) == dir {
			got = append(got, c)
		}
	}
	want := []pluginhost.Candidate{
		{Name: "banner", Path: banner, Where: pluginhost.PathEnv},
		{Name: "noexec", Path: noexec, Where: pluginhost.PathEnv, Problem: "plugin binary " + noexec + " is not executable"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Discover (-want +got):\n%s", diff)
	}
}

// TestNoLeftovers checks that Close leaves no plugin process, no socket
// directory, no goroutine and no file descriptor behind, and that nothing
// starts a plugin again.
func TestNoLeftovers(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the host makes its socket directory
	run := func() ([]int, *engine.Pipeline) {
		h, err := pluginhost.New(hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := h.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
		remote := load(t, h, builtinBinary())
		tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
		s := spec{resolver: comp{plugin: "dns-system"}, handshakes: []comp{tls}}
		if a := probeOnce(t, s.build(t, placements[1], remote), "127.0.0.1", testLab.TLS.Addr.Port(), 5*time.Second); !a.OK {
			t.Errorf("attempt failed: %+v", a.Failure)
		}
		p := misbehaving(t, h, crashBin, "crash")
		if a := probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 2*time.Second); !a.OK {
			t.Errorf("attempt failed: %+v", a.Failure)
		}
		if dirs, _ := filepath.Glob(filepath.Join(tmp, "probe-plugins-*")); len(dirs) != 1 {
			t.Errorf("socket directories %v while running, want one", dirs)
		}
		return h.Pids(), p
	}
	run() // once for what stays up for good (the lab's accepted connections, gRPC's globals)
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	pids, p := run()
	if len(pids) != 2 {
		t.Errorf("plugin processes %v while running, want two", pids)
	}
	waitFor(t, "the plugin processes to go", func() string {
		var alive []int
		for _, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				alive = append(alive, pid)
			}
		}
		return fmt.Sprint(alive)
	}, "[]")
	if dirs, _ := filepath.Glob(filepath.Join(tmp, "probe-plugins-*")); len(dirs) != 0 {
		t.Errorf("socket directories %v after Close, want none", dirs)
	}
	// A component that outlives its host fails, and starts no process.
	a := probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 2*time.Second)
	wantCrashed(t, a, "crash")
	if !strings.Contains(a.Failure.Message, "closed") {
		t.Errorf("failure %q, want it to say the host is closed", a.Failure.Message)
	}
	if procs := processesOf(t, crashBin); len(procs) > 0 {
		t.Errorf("plugin processes after Close: %v", procs)
	}
}

// processesOf returns the pids of the running processes of the executable
// path.
func processesOf(t *testing.T, path string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, c := range cmdlines {
		if b, err := os.ReadFile(c); err == nil && strings.HasPrefix(string(b), path+"\x00") {
			pids = append(pids, filepath.Base(filepath.Dir(c)))
		}
	}
	return pids
}

// waitFor polls cond for 3 s until it returns want.
func waitFor(t *testing.T, what string, cond func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := cond()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("waited 3 s for %s: %s", what, got)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkAttempt measures one attempt of resolve (dns-miekg against the
// lab's DNS server), connect and tls against the lab's TLS server, with the
// built-ins in process and out of process, side by side: three rounds of
// both, so that both see the same machine (`make bench-plugins` prints the
// ratio).
func BenchmarkAttempt(b *testing.B) {
	remote := load(b, newHost(b), builtinBinary())
	miekg := comp{"dns-miekg", map[string]cty.Value{"servers": cty.ListVal([]cty.Value{cty.StringVal(testLab.DNS.Addr)})}}
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	s := spec{resolver: miekg, handshakes: []comp{tls}}
	eng := engine.New(engine.Options{Timeout: 5 * time.Second})
	targets := map[string]*engine.Target{}
	for _, pl := range []placement{{"inprocess", nil}, {"isolated", placements[1].remote}} {
		targets[pl.name] = &engine.Target{Name: "api", Host: "api.probe.test", Port: testLab.TLS.Addr.Port(), Pipeline: s.build(b, pl, remote)}
	}
	for range 3 {
		for _, name := range []string{"inprocess", "isolated"} {
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if a := eng.Probe(b.Context(), targets[name]); !a.OK {
						b.Fatalf("attempt failed: %+v", a.Failure)
					}
				}
			})
		}
	}
}
