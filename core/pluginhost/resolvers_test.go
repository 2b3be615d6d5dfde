package pluginhost_test

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// resolverSpec is a pipeline of issue 20's components: any resolver and
// dialer, and handshakes.
type resolverSpec struct {
	resolver, dialer comp
	handshakes       []comp
}

// build builds s's pipeline from the built-ins in process and the remote
// ones where pl says so.
func (s resolverSpec) build(tb testing.TB, pl placement, remote map[string]*sdk.Plugin) *engine.Pipeline {
	tb.Helper()
	local := builtins.Plugins()
	plugin := func(name string, k sdk.Kind) *sdk.Plugin {
		set := local
		if pl.remote[k] {
			set = remote
		}
		if set[name] == nil {
			tb.Fatalf("no plugin %s", name)
		}
		return set[name]
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
	dp := plugin(s.dialer.plugin, sdk.KindDialer)
	d, err := dp.NewDialer(s.dialer.config(tb, dp, sdk.KindDialer))
	if err != nil {
		tb.Fatalf("%s: %v", s.dialer.plugin, err)
	}
	p.Dialer = engine.Stage[sdk.Dialer]{Name: s.dialer.plugin, Plugin: s.dialer.plugin, Component: d}
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

// labCert writes a certificate of the lab's CA for 127.0.0.1 and
// dns.probe.test, and its key, to dir.
func labCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	cert, err := testLab.CA.Issue([]string{"dns.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, keyFile: {Type: "PRIVATE KEY", Bytes: key}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestResolversConformance runs issue 20's resolvers and dialers in
// process, out of process, and mixed, and wants the same outcome from all:
// DoH against unbound, and the proxy dialers against microsocks and
// tinyproxy, with TLS and HTTP through the tunnel. With the dialer out of
// process and the handshakes in, the tunnel's socket is handed off.
func TestResolversConformance(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	certFile, keyFile := labCert(t, t.TempDir())
	unbound, err := daemon.StartUnbound(daemon.UnboundConfig{Zone: `	local-zone: "probe.test." static
	local-data: "api.probe.test. 60 IN A 127.0.0.1"`, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unbound.Close() })
	doh, dohPort := unbound.DoH.String(), strconv.Itoa(int(unbound.DoH.Port()))
	socks, socksAuth, tinyproxy := daemon.ProxyFor(t)(daemon.StartMicrosocks("", "")), daemon.ProxyFor(t)(daemon.StartMicrosocks("probe", "s3cret")), daemon.ProxyFor(t)(daemon.StartTinyproxy(""))
	silent := startSilentTCP(t)
	rev := daemon.StartRevocationLab(t)
	mtls := func(mode string, more ...string) comp {
		attrs := map[string]cty.Value{"ca_file": cty.StringVal(rev.CAFile), "cert_file": cty.StringVal(rev.ClientCert),
			"key_file": cty.StringVal(rev.ClientKey), "revocation": cty.StringVal(mode)}
		for i := 0; i+1 < len(more); i += 2 {
			attrs[more[i]] = cty.StringVal(more[i+1])
		}
		return comp{"tls", attrs}
	}

	dohResolver := comp{"dns-miekg", map[string]cty.Value{"servers": cty.ListVal([]cty.Value{cty.StringVal(doh)}),
		"transport": cty.StringVal("doh"), "url": cty.StringVal("https://dns.probe.test:" + dohPort + "/dns-query"),
		"ca_file": cty.StringVal(testLab.CAFile), "query_types": cty.ListVal([]cty.Value{cty.StringVal("A")})}}
	system := comp{plugin: "dns-system"}
	tcp := comp{plugin: "dial-tcp"}
	socks5 := func(proxy string, more map[string]cty.Value) comp {
		attrs := map[string]cty.Value{"proxy": cty.StringVal(proxy)}
		for k, v := range more {
			attrs[k] = v
		}
		return comp{"dial-socks5", attrs}
	}
	httpConnect := comp{"dial-http-connect", map[string]cty.Value{"proxy": cty.StringVal("http://" + tinyproxy)}}
	tls := comp{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}}
	http := comp{plugin: "http"}
	web := []string{"resolve", "connect", "proxy", "tls", "http"}
	tests := []struct {
		name  string
		spec  resolverSpec
		host  string
		port  uint16
		want  outcome
		attrs map[string]map[string]any
	}{
		{name: "doh resolves", spec: resolverSpec{resolver: dohResolver, dialer: tcp}, host: "api.probe.test", port: testLab.TCP.Addr.Port(),
			want:  outcome{OK: true, Phases: []string{"resolve", "connect"}},
			attrs: map[string]map[string]any{"resolve": {"addresses": []string{"127.0.0.1"}, "reused": false, "http_version": "HTTP/2.0", "server": doh}}},
		{name: "doh nxdomain", spec: resolverSpec{resolver: dohResolver, dialer: tcp}, host: "nope.probe.test", port: testLab.TCP.Addr.Port(),
			want: outcome{Class: sdk.ClassDNSNXDomain, Phase: "resolve", Phases: []string{"resolve"}}},
		{name: "socks5 tls and http", spec: resolverSpec{resolver: system, dialer: socks5(socks, nil), handshakes: []comp{tls, http}},
			host: "127.0.0.1", port: testLab.TLS.Addr.Port(), want: outcome{OK: true, Phases: web},
			attrs: map[string]map[string]any{"connect": {"remote": socks, "proxy": socks}, "tls": {"verified": true}, "http": {"status": 200}}},
		{name: "socks5 auth, remote name", spec: resolverSpec{resolver: system,
			dialer:     socks5(socksAuth, map[string]cty.Value{"username": cty.StringVal("probe"), "password": cty.StringVal("s3cret"), "resolve": cty.StringVal("remote")}),
			handshakes: []comp{{"tls", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile), "server_name": cty.StringVal("api.probe.test")}}}},
			host: "localhost", port: testLab.TLS.Addr.Port(), want: outcome{OK: true, Phases: web[:4]}},
		{name: "socks5 wrong password", spec: resolverSpec{resolver: system,
			dialer: socks5(socksAuth, map[string]cty.Value{"username": cty.StringVal("probe"), "password": cty.StringVal("nope")})},
			host: "127.0.0.1", port: testLab.TLS.Addr.Port(), want: outcome{Class: "proxy.auth", Phase: "proxy", Phases: web[:3]}},
		{name: "socks5 target refused", spec: resolverSpec{resolver: system, dialer: socks5(socks, nil)},
			host: "127.0.0.1", port: testLab.Refused.Port(), want: outcome{Class: "proxy.target_unreachable", Phase: "proxy", Phases: web[:3]}},
		{name: "socks5 silent proxy", spec: resolverSpec{resolver: system, dialer: socks5(silent, map[string]cty.Value{"timeout": cty.StringVal("200ms")})},
			host: "127.0.0.1", port: testLab.TLS.Addr.Port(), want: outcome{Class: "proxy.timeout", Phase: "proxy", Phases: web[:3]}},
		{name: "http-connect tls and http", spec: resolverSpec{resolver: system, dialer: httpConnect, handshakes: []comp{tls, http}},
			host: "127.0.0.1", port: testLab.TLS.Addr.Port(), want: outcome{OK: true, Phases: web},
			attrs: map[string]map[string]any{"proxy": {"status": 200}, "http": {"status": 200}}},
		{name: "dial-tcp source, port range and fwmark", spec: resolverSpec{resolver: system, dialer: comp{"dial-tcp", map[string]cty.Value{
			"source": cty.StringVal("127.0.0.2"), "source_port": cty.StringVal("20000-29999"), "fwmark": cty.NumberIntVal(42)}}, handshakes: []comp{tls}},
			host: "127.0.0.1", port: testLab.TLS.Addr.Port(), want: outcome{OK: true, Phases: []string{"resolve", "connect", "tls"}}},
		{name: "tls client certificate, ocsp good", spec: resolverSpec{resolver: system, dialer: tcp, handshakes: []comp{mtls("ocsp"), http}},
			host: "127.0.0.1", port: rev.Servers["good"].Port(), want: outcome{OK: true, Phases: []string{"resolve", "connect", "tls", "http"}},
			attrs: map[string]map[string]any{"tls": {"client_cert_requested": true, "client_cert_days_left": 30, "revocation_status": "good",
				"revocation_source": "ocsp", "ocsp_stapled": false}, "http": {"status": 200}}},
		{name: "tls ocsp stapled revoked", spec: resolverSpec{resolver: system, dialer: tcp, handshakes: []comp{mtls("ocsp"), http}},
			host: "127.0.0.1", port: rev.Servers["revoked-stapled"].Port(), want: outcome{Class: "tls.cert_revoked", Phase: "tls", Phases: []string{"resolve", "connect", "tls"}},
			attrs: map[string]map[string]any{"tls": {"revocation_status": "revoked", "revocation_source": "stapled", "ocsp_stapled": true}}},
		{name: "tls crl revoked", spec: resolverSpec{resolver: system, dialer: tcp, handshakes: []comp{mtls("crl")}},
			host: "127.0.0.1", port: rev.Servers["revoked"].Port(), want: outcome{Class: "tls.cert_revoked", Phase: "tls", Phases: []string{"resolve", "connect", "tls"}}},
		{name: "tls ocsp responder hangs", spec: resolverSpec{resolver: system, dialer: tcp, handshakes: []comp{mtls("ocsp", "timeout", "300ms")}},
			host: "127.0.0.1", port: rev.Servers["hang"].Port(), want: outcome{Class: "tls.revocation_unknown", Phase: "tls", Phases: []string{"resolve", "connect", "tls"}}},
		{name: "http-connect target refused", spec: resolverSpec{resolver: system, dialer: httpConnect},
			host: "127.0.0.1", port: testLab.Refused.Port(), want: outcome{Class: "proxy.target_unreachable", Phase: "proxy", Phases: web[:3]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPlacements(t, func(t *testing.T, pl placement) engine.Attempt {
				return probeOnce(t, tt.spec.build(t, pl, remote), tt.host, tt.port, 5*time.Second)
			}, func(placement) bool { return false }, tt.want, tt.attrs)
		})
	}
}

// startSilentTCP starts a loopback server that accepts and never says a
// word, and returns its address.
func startSilentTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}
