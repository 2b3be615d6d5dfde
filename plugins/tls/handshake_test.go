package tlshandshake

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/plugintest"
)

var testLab *lab.Lab

func TestMain(m *testing.M) {
	l, err := lab.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testLab = l
	code := m.Run()
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// labCert returns the attributes of a TLS 1.3 handshake with api.probe.test
// that got the lab's certificate from issuer, updated with extra. The
// validity dates, cipher and verify_error are checked apart.
func labCert(issuer string, extra map[string]any) map[string]any {
	m := map[string]any{
		"server_name":  "api.probe.test",
		"version":      "TLS 1.3",
		"alpn":         "",
		"resumed":      false,
		"verified":     true,
		"cert_subject": "CN=api.probe.test",
		"cert_issuer":  issuer,
		"cert_sans":    []string{"api.probe.test", "*.probe.test", "127.0.0.1"},
	}
	maps.Copy(m, extra)
	return m
}

func TestHandshake(t *testing.T) {
	labCA := testLab.CA.Cert.Subject.String()
	const untrustedCA = "CN=untrusted CA,O=probe lab" // the CA the lab's Untrusted server's certificate comes from
	caFile := map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}
	with := func(kv ...any) map[string]cty.Value {
		m := maps.Clone(caFile)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(cty.Value)
		}
		return m
	}
	timeout := func(d time.Duration) func() (context.Context, context.CancelFunc) {
		return func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), d) }
	}
	canceled := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	}
	nameOnly := map[string]any{"server_name": "api.probe.test"}
	verified := labCert(labCA, nil)
	// A server that accepts P-256 alone, and a list of key exchanges.
	cert, err := testLab.CA.Issue([]string{"api.probe.test", "*.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)},
		time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p256Only, err := lab.StartTLS(lab.TLSOptions{Cert: cert, KeyExchanges: []tls.CurveID{tls.CurveP256}})
	if err != nil {
		t.Fatal(err)
	}
	defer p256Only.Close()
	groups := func(names ...string) cty.Value {
		l := make([]cty.Value, len(names))
		for i, n := range names {
			l[i] = cty.StringVal(n)
		}
		return cty.ListVal(l)
	}
	unverified := labCert(labCA, map[string]any{"verified": false})
	wrongName := labCert(labCA, map[string]any{"verified": false, "cert_subject": "CN=other.example", "cert_sans": []string{"other.example"}})

	tests := []struct {
		name     string
		values   map[string]cty.Value
		server   *lab.TLSServer
		host     string
		ctx      func() (context.Context, context.CancelFunc) // nil for Background
		class    sdk.Class                                    // "" for success
		attrs    map[string]any
		min, max time.Duration // bounds of the phase's duration; max 0 means 1s
	}{
		{name: "ok", values: caFile, server: testLab.TLS, host: "api.probe.test", attrs: verified},
		{name: "alpn", values: with("alpn", cty.ListVal([]cty.Value{cty.StringVal("h2"), cty.StringVal("http/1.1")})),
			server: testLab.TLS, host: "api.probe.test", attrs: labCert(labCA, map[string]any{"alpn": "h2"})},
		{name: "ip literal host", values: caFile, server: testLab.TLS, host: "127.0.0.1",
			attrs: labCert(labCA, map[string]any{"server_name": ""})},
		{name: "server_name", values: with("server_name", cty.StringVal("api.probe.test")),
			server: testLab.TLS, host: "127.0.0.1", attrs: verified},
		{name: "max_version 1.2", values: with("max_version", cty.StringVal("1.2")), server: testLab.TLS, host: "api.probe.test",
			attrs: labCert(labCA, map[string]any{"version": "TLS 1.2"})},
		{name: "key_exchanges", values: with("key_exchanges", groups("X25519")), server: testLab.TLS, host: "api.probe.test",
			attrs: verified},
		{name: "key_exchanges the server takes", values: with("key_exchanges", groups("P256")), server: p256Only,
			host: "api.probe.test", attrs: verified},
		{name: "default key exchanges", values: caFile, server: p256Only, host: "api.probe.test", attrs: verified},
		{name: "slow server", values: caFile, server: testLab.SlowTLS, host: "api.probe.test", attrs: verified,
			min: 40 * time.Millisecond, max: 70 * time.Millisecond},
		{name: "insecure expired", values: with("insecure_skip_verify", cty.True), server: testLab.Expired, host: "api.probe.test",
			attrs: unverified},
		{name: "insecure wrong name", values: with("insecure_skip_verify", cty.True), server: testLab.WrongName, host: "api.probe.test",
			attrs: wrongName},

		{name: "expired", values: caFile, server: testLab.Expired, host: "api.probe.test",
			class: sdk.ClassTLSCertExpired, attrs: unverified},
		{name: "wrong name", values: caFile, server: testLab.WrongName, host: "api.probe.test",
			class: sdk.ClassTLSCertNameMismatch, attrs: wrongName},
		{name: "untrusted", values: caFile, server: testLab.Untrusted, host: "api.probe.test",
			class: sdk.ClassTLSCertUntrusted, attrs: labCert(untrustedCA, map[string]any{"verified": false})},
		{name: "system roots", server: testLab.TLS, host: "api.probe.test",
			class: sdk.ClassTLSCertUntrusted, attrs: unverified},
		{name: "reset", values: caFile, server: testLab.Reset, host: "api.probe.test",
			class: sdk.ClassTCPReset, attrs: nameOnly},
		{name: "server alert", values: with("min_version", cty.StringVal("1.0"), "max_version", cty.StringVal("1.1")),
			server: testLab.TLS, host: "api.probe.test", class: sdk.ClassTLSAlert, attrs: nameOnly},
		{name: "key_exchanges the server refuses", values: with("key_exchanges", groups("X25519MLKEM768", "X25519")),
			server: p256Only, host: "api.probe.test", class: sdk.ClassTLSAlert, attrs: nameOnly},
		{name: "deadline", values: caFile, server: testLab.SlowTLS, host: "api.probe.test", ctx: timeout(20 * time.Millisecond),
			class: sdk.ClassTLSTimeout, attrs: nameOnly, min: 15 * time.Millisecond, max: 50 * time.Millisecond},
		{name: "timeout attribute", values: with("timeout", cty.StringVal("20ms")), server: testLab.SlowTLS, host: "api.probe.test",
			class: sdk.ClassTLSTimeout, attrs: nameOnly, min: 19 * time.Millisecond, max: 50 * time.Millisecond},
		{name: "canceled", values: caFile, server: testLab.TLS, host: "api.probe.test", ctx: canceled,
			class: sdk.ClassCanceled, attrs: nameOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := plugintest.Handshaker(t, Plugin(), tc.values)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", tc.server.Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			if tc.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tc.ctx()
				defer cancel()
			}
			resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: tc.host, Address: tc.server.Addr})
			if err != nil {
				t.Fatalf("Handshake returned a Go error %v", err)
			}
			if len(resp.Phases) != 1 {
				t.Fatalf("got %d phases, want 1", len(resp.Phases))
			}
			p := resp.Phases[0]
			upper := tc.max
			if upper == 0 {
				upper = time.Second
			}
			if p.Name != sdk.PhaseTLS || p.OK != (tc.class == "") || p.Start < 0 || p.Duration < tc.min || p.Duration >= upper {
				t.Errorf("phase = %s ok=%v start=%v duration=%v, want tls ok=%v lasting [%v, %v)",
					p.Name, p.OK, p.Start, p.Duration, tc.class == "", tc.min, upper)
			}
			if tc.class == "" {
				if resp.Failure != nil {
					t.Errorf("Failure = %v, want none", resp.Failure)
				}
				if c, ok := resp.Conn.(*tls.Conn); !ok || !c.ConnectionState().HandshakeComplete {
					t.Errorf("Conn = %T, want a *tls.Conn with a complete handshake", resp.Conn)
				}
			} else {
				if resp.Conn != nil {
					t.Errorf("Conn = %T on a failed handshake, want nil", resp.Conn)
				}
				if f := resp.Failure; f == nil || f.Phase != sdk.PhaseTLS || f.Class != tc.class ||
					!strings.HasPrefix(f.Message, "tls handshake with "+tc.server.Addr.String()+": ") {
					t.Errorf("Failure = %+v, want phase tls, class %s and a message naming the address", f, tc.class)
				}
			}
			ignore := cmpopts.IgnoreMapEntries(func(k string, _ any) bool {
				return k == "cipher" || k == "verify_error" || strings.HasPrefix(k, "cert_not_") || k == "cert_days_left" ||
					k == "cert_fingerprint_sha256" || k == "cert_serial" || k == "certs_earliest_not_after" || k == "chain_not_after"
			})
			if diff := cmp.Diff(tc.attrs, p.Attrs, ignore); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			checkApart(t, p.Attrs)
			if c, ok := resp.Conn.(*tls.Conn); ok {
				checkChain(t, p.Attrs, c.ConnectionState().PeerCertificates, tc.attrs["verified"] == true)
			}
		})
	}
}

// checkApart checks the attributes TestHandshake leaves out of its
// comparison: the cipher, verify_error, and the validity dates of the
// certificate against each other and the clock.
func checkApart(t *testing.T, attrs map[string]any) {
	t.Helper()
	if _, ok := attrs["version"]; ok {
		if c, _ := attrs["cipher"].(string); !strings.HasPrefix(c, "TLS_") {
			t.Errorf("cipher = %q, want a cipher suite name", attrs["cipher"])
		}
	}
	if msg, ok := attrs["verify_error"].(string); ok == (attrs["verified"] != false) || ok && !strings.HasPrefix(msg, "x509: ") {
		t.Errorf("verify_error = %q with verified = %v, want an x509 error exactly when not verified", msg, attrs["verified"])
	}
	if _, ok := attrs["cert_subject"]; !ok {
		return
	}
	notBefore, err1 := time.Parse(time.RFC3339, fmt.Sprint(attrs["cert_not_before"]))
	notAfter, err2 := time.Parse(time.RFC3339, fmt.Sprint(attrs["cert_not_after"]))
	if err1 != nil || err2 != nil || notBefore.Location() != time.UTC || notAfter.Location() != time.UTC || !notBefore.Before(notAfter) {
		t.Fatalf("cert_not_before = %v, cert_not_after = %v, want RFC 3339 UTC times in order", attrs["cert_not_before"], attrs["cert_not_after"])
	}
	wantDays := int(math.Floor(time.Until(notAfter).Hours() / 24))
	if days, ok := attrs["cert_days_left"].(int); !ok || days != wantDays {
		t.Errorf("cert_days_left = %v (%T), want %d for cert_not_after %s", attrs["cert_days_left"], attrs["cert_days_left"], wantDays, notAfter)
	}
	if expired := time.Now().After(notAfter); expired != strings.Contains(fmt.Sprint(attrs["verify_error"]), "expired") {
		t.Errorf("cert_not_after %s (expired %v) disagrees with verify_error %q", notAfter, expired, attrs["verify_error"])
	}
}

// checkChain checks the facts of blackbox's TLS families against the
// certificates the server sent (the lab's leaf, signed by its CA): the
// leaf's fingerprint and serial as blackbox prints them, the earliest end
// of validity, and the verified chain's (leaf and CA) when verified.
func checkChain(t *testing.T, attrs map[string]any, peer []*x509.Certificate, verified bool) {
	t.Helper()
	leaf := peer[0]
	sum := sha256.Sum256(leaf.Raw)
	rfc := func(at time.Time) string { return at.UTC().Format(time.RFC3339) }
	earliest := leaf.NotAfter
	if verified && testLab.CA.Cert.NotAfter.Before(earliest) {
		earliest = testLab.CA.Cert.NotAfter
	}
	want := map[string]any{
		"cert_fingerprint_sha256":  fmt.Sprintf("%x", sum),
		"cert_serial":              fmt.Sprintf("%x", leaf.SerialNumber.Bytes()),
		"certs_earliest_not_after": rfc(leaf.NotAfter), // the lab sends the leaf alone
	}
	if verified {
		want["chain_not_after"] = rfc(earliest)
	}
	got := map[string]any{}
	for k := range attrs {
		if _, ok := want[k]; ok || k == "chain_not_after" {
			got[k] = attrs[k]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain facts (-want +got):\n%s", diff)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	str := cty.StringVal
	tests := []struct {
		name   string
		values map[string]cty.Value
		attr   string
	}{
		{"ca_file missing", map[string]cty.Value{"ca_file": str(filepath.Join(dir, "missing.pem"))}, "ca_file"},
		{"ca_file not PEM", map[string]cty.Value{"ca_file": str(notPEM)}, "ca_file"},
		{"alpn empty", map[string]cty.Value{"alpn": cty.ListVal([]cty.Value{str("h2"), str("")})}, "alpn"},
		{"min_version unknown", map[string]cty.Value{"min_version": str("1.4")}, "min_version"},
		{"max_version spelt out", map[string]cty.Value{"max_version": str("TLS 1.2")}, "max_version"},
		{"versions reversed", map[string]cty.Value{"min_version": str("1.3"), "max_version": str("1.2")}, "max_version"},
		{"max_version below default min", map[string]cty.Value{"max_version": str("1.1")}, "max_version"},
		{"timeout garbage", map[string]cty.Value{"timeout": str("soon")}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugintest.Handshaker(t, Plugin(), tc.values)
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tc.attr {
				t.Errorf("New(%v) = %v, want an *sdk.AttrError for %s", tc.values, err, tc.attr)
			}
		})
	}
}

// TestWarm checks that the warm-up New runs once per process completes its
// handshake, with the plugin's own code and verification: its errors are
// otherwise ignored, and a broken warm-up would leave the first handshake
// of every run cold without a word. (What it saves is measured by make
// bench: startup.first_tls_excess_ms.)
func TestWarm(t *testing.T) {
	start := time.Now()
	if err := warm(); err != nil {
		t.Fatalf("warm-up handshake: %v", err)
	}
	t.Logf("warm-up took %v", time.Since(start))
}
