package dnsmiekg

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/zclconf/go-cty/cty"
)

// newQuery builds a Query through the plugin's dialer schema, as the core
// does.
func newQuery(t testing.TB, values map[string]cty.Value) (*Query, error) {
	t.Helper()
	p := Plugin()
	cfg, err := p.DialerSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	return d.(*Query), nil
}

// checks is a validate_*_rrs value.
func checks(kv ...string) cty.Value {
	m := map[string]cty.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = strs(kv[i+1])
	}
	return cty.MapVal(m)
}

// TestQueryUnbound asks unbound, an implementation we did not write, for
// records of other types than addresses, over each transport, and checks
// the reply's facts, the rcode and record checks, and the failure classes.
func TestQueryUnbound(t *testing.T) {
	u := startUnbound(t)
	soa := "zone.probe.test.\t3600\tIN\tSOA\tns.zone.probe.test. hostmaster.zone.probe.test. 2026120601 7200 900 1209600 300"
	mx := "zone.probe.test.\t300\tIN\tMX\t10 mail.zone.probe.test."
	txt := "zone.probe.test.\t300\tIN\tTXT\t\"v=spf1 -all\""
	tlsValues := map[string]cty.Value{"transport": cty.StringVal("tls"), "ca_file": cty.StringVal(dotCAFile), "server_name": cty.StringVal("dns.probe.test")}
	cases := []struct {
		name   string
		server string
		values map[string]cty.Value
		class  sdk.Class
		attrs  map[string]any // compared: those named here
	}{
		{name: "SOA over udp", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("SOA"),
			"edns_buffer_size": cty.NumberIntVal(0)},
			attrs: map[string]any{"rcode": "NOERROR", "query_type": "SOA", "query_name": "zone.probe.test.", "serial": int64(daemon.UnboundSerial),
				"answer_rrs": 1, "authority_rrs": 0, "additional_rrs": 0, "answer": []string{soa}, "authority": []string{}, "tcp_fallback": false}},
		{name: "MX over tcp, checked", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test."), "query_type": cty.StringVal("mx"),
			"transport": cty.StringVal("tcp"), "validate_answer_rrs": checks("fail_if_not_matches_regexp", `\tMX\t10 mail\.`, "fail_if_none_matches_regexp", "mail")},
			attrs: map[string]any{"rcode": "NOERROR", "query_type": "MX", "answer": []string{mx}, "answer_rrs": 1}},
		{name: "TXT over tls", server: u.tlsAddr, values: with(tlsValues, "query_name", cty.StringVal("zone.probe.test"), "query_type", cty.StringVal("TXT")),
			attrs: map[string]any{"rcode": "NOERROR", "answer": []string{txt}, "transport": "tls"}},
		{name: "TLS checked for the target's address", server: u.tlsAddr, values: map[string]cty.Value{"transport": cty.StringVal("tls"),
			"ca_file": cty.StringVal(dotCAFile), "query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("SOA")},
			attrs: map[string]any{"rcode": "NOERROR", "serial": int64(daemon.UnboundSerial)}},
		{name: "TLS for another name", server: u.tlsAddr, values: with(tlsValues, "query_name", cty.StringVal("zone.probe.test"),
			"server_name", cty.StringVal("other.example")),
			class: sdk.ClassDNSError, attrs: map[string]any{"rcode": nil}},
		{name: "NS without recursion", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("NS"),
			"recursion_desired": cty.False},
			attrs: map[string]any{"rcode": "NOERROR", "answer": []string{"zone.probe.test.\t3600\tIN\tNS\tns.zone.probe.test."}}},
		{name: "NXDOMAIN when valid", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("nope.zone.probe.test"), "query_type": cty.StringVal("SOA"),
			"valid_rcodes": strs("NOERROR", "NXDOMAIN")},
			attrs: map[string]any{"rcode": "NXDOMAIN", "answer_rrs": 0}},
		{name: "NXDOMAIN", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("nope.zone.probe.test"), "query_type": cty.StringVal("SOA")},
			class: sdk.ClassDNSNXDomain, attrs: map[string]any{"rcode": "NXDOMAIN"}},
		{name: "NOERROR not valid", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("MX"),
			"valid_rcodes": strs("NXDOMAIN")},
			class: ClassUnexpectedRcode, attrs: map[string]any{"rcode": "NOERROR", "answer_rrs": 1}},
		{name: "a record matches", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("TXT"),
			"validate_answer_rrs": checks("fail_if_matches_regexp", "spf1")},
			class: ClassRecordMismatch, attrs: map[string]any{"rcode": "NOERROR", "answer": []string{txt}}},
		{name: "an empty section", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("zone.probe.test"), "query_type": cty.StringVal("TXT"),
			"validate_authority_rrs": checks("fail_if_none_matches_regexp", ".")},
			class: ClassRecordMismatch, attrs: map[string]any{"authority_rrs": 0}},
		{name: "refused outside the zone", server: u.addr, values: map[string]cty.Value{"query_name": cty.StringVal("example.com"), "query_type": cty.StringVal("SOA")},
			class: sdk.ClassDNSRefused, attrs: map[string]any{"rcode": "REFUSED"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := newQuery(t, c.values)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			ap := netip.MustParseAddrPort(c.server)
			resp, err := q.Dial(ctx, &sdk.DialRequest{Address: ap, Host: ap.Addr().String()})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase || resp.Conn != nil {
				t.Fatalf("phases %+v, conn %v: want one phase %q and no connection", resp.Phases, resp.Conn, Phase)
			}
			ph := resp.Phases[0]
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
				if resp.Failure.Phase != Phase || !strings.Contains(resp.Failure.Message, c.server) {
					t.Errorf("failure %+v: want phase %q and a message naming %s", resp.Failure, Phase, c.server)
				}
			}
			if class != c.class || ph.OK != (c.class == "") {
				t.Errorf("class %q, ok %v; want %q (%+v)", class, ph.OK, c.class, resp.Failure)
			}
			got := map[string]any{}
			for k := range c.attrs {
				got[k] = ph.Attrs[k]
			}
			if d := cmp.Diff(c.attrs, got); d != "" {
				t.Errorf("attrs (-want +got):\n%s", d)
			}
			if ph.Attrs["server"] != c.server {
				t.Errorf("server %v, want %s", ph.Attrs["server"], c.server)
			}
			if _, ok := ph.Attrs["serial"]; ok && c.attrs["serial"] == nil {
				t.Errorf("serial %v without a SOA answer", ph.Attrs["serial"])
			}
			if _, replied := ph.Attrs["rcode"]; !replied {
				return
			}
			if rtt := msDuration(ph.Attrs["rtt_ms"]); rtt <= 0 || rtt > ph.Duration {
				t.Errorf("rtt_ms %v: want more than 0 and within the phase's %v", rtt, ph.Duration)
			}
		})
	}
}

// TestQuerySilent: a server that never answers ends the phase in
// dns.timeout at the query's timeout, not later.
func TestQuerySilent(t *testing.T) {
	q, err := newQuery(t, map[string]cty.Value{"query_name": cty.StringVal("probe.test"), "query_type": cty.StringVal("SOA"),
		"timeout": cty.StringVal("150ms")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := q.Dial(ctx, &sdk.DialRequest{Address: netip.MustParseAddrPort(startSilent(t))})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); resp.Failure == nil || resp.Failure.Class != sdk.ClassDNSTimeout || took < 150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("failure %+v after %v: want dns.timeout after 150ms", resp.Failure, took)
	}
	if _, ok := resp.Phases[0].Attrs["rcode"]; ok {
		t.Errorf("rcode %v without a reply", resp.Phases[0].Attrs["rcode"])
	}
}

// TestRRCheck checks the validate_*_rrs semantics against
// blackbox_exporter's validRRs, case by case.
func TestRRCheck(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a1, a2 := rr("x.test. 60 IN A 192.0.2.1"), rr("x.test. 60 IN A 192.0.2.2")
	cases := []struct {
		name string
		kv   []string
		rrs  []dns.RR
		fail bool
	}{
		{"matches: one matches", []string{"fail_if_matches_regexp", `192\.0\.2\.2`}, []dns.RR{a1, a2}, true},
		{"matches: none", []string{"fail_if_matches_regexp", `198\.51`}, []dns.RR{a1, a2}, false},
		{"matches: no record", []string{"fail_if_matches_regexp", `.`}, nil, false},
		{"not matches: all match", []string{"fail_if_not_matches_regexp", `192\.0\.2\.`}, []dns.RR{a1, a2}, false},
		{"not matches: one does not", []string{"fail_if_not_matches_regexp", `192\.0\.2\.1`}, []dns.RR{a1, a2}, true},
		{"not matches: no record", []string{"fail_if_not_matches_regexp", `.`}, nil, true},
		// blackbox fails unless every record matches, whatever the name says.
		{"all match: all match", []string{"fail_if_all_match_regexp", `192\.0\.2\.`}, []dns.RR{a1, a2}, false},
		{"all match: one does not", []string{"fail_if_all_match_regexp", `192\.0\.2\.1`}, []dns.RR{a1, a2}, true},
		{"all match: no record", []string{"fail_if_all_match_regexp", `.`}, nil, false},
		{"none matches: one matches", []string{"fail_if_none_matches_regexp", `192\.0\.2\.2`}, []dns.RR{a1, a2}, false},
		{"none matches: none", []string{"fail_if_none_matches_regexp", `198\.51`}, []dns.RR{a1, a2}, true},
		{"none matches: no record", []string{"fail_if_none_matches_regexp", `.`}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := newQuery(t, map[string]cty.Value{"query_name": cty.StringVal("x.test"), "validate_answer_rrs": checks(c.kv...)})
			if err != nil {
				t.Fatal(err)
			}
			if why := q.checks[0].check(c.rrs); (why != "") != c.fail {
				t.Errorf("check = %q, want failing %v", why, c.fail)
			}
		})
	}
}

// TestNewQuery checks that bad attributes are errors naming the attribute.
func TestNewQuery(t *testing.T) {
	name := cty.StringVal("example.com")
	cases := []struct {
		name   string
		values map[string]cty.Value
		attr   string
	}{
		{"unknown type", map[string]cty.Value{"query_name": name, "query_type": cty.StringVal("MXX")}, "query_type"},
		{"bad name", map[string]cty.Value{"query_name": cty.StringVal("a..b")}, "query_name"},
		{"empty name", map[string]cty.Value{"query_name": cty.StringVal("")}, "query_name"},
		{"doh", map[string]cty.Value{"query_name": name, "transport": cty.StringVal("doh")}, "transport"},
		{"server_name over udp", map[string]cty.Value{"query_name": name, "server_name": cty.StringVal("x")}, "server_name"},
		{"bad rcode", map[string]cty.Value{"query_name": name, "valid_rcodes": strs("NOERR")}, "valid_rcodes"},
		{"no rcode", map[string]cty.Value{"query_name": name, "valid_rcodes": cty.ListValEmpty(cty.String)}, "valid_rcodes"},
		{"bad regexp", map[string]cty.Value{"query_name": name, "validate_answer_rrs": checks("fail_if_matches_regexp", "(")}, "validate_answer_rrs"},
		{"unknown check", map[string]cty.Value{"query_name": name, "validate_additional_rrs": checks("fail_if_matches", "x")}, "validate_additional_rrs"},
		{"DO without EDNS", map[string]cty.Value{"query_name": name, "dnssec_ok": cty.True, "edns_buffer_size": cty.NumberIntVal(0)}, "dnssec_ok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newQuery(t, c.values)
			ae, ok := errors.AsType[*sdk.AttrError](err)
			if !ok || ae.Attr != c.attr {
				t.Fatalf("error %v, want an *sdk.AttrError on %s", err, c.attr)
			}
		})
	}
}

// with returns a copy of m with the key, value pairs kv added.
func with(m map[string]cty.Value, kv ...any) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(cty.Value)
	}
	return out
}

// TestQueryFaults runs the dialer against the lab's DNS server behaving
// badly: each fault ends in its class, and a truncated reply is asked
// again over TCP unless tcp_fallback is off.
func TestQueryFaults(t *testing.T) {
	s := startDNS(t)
	cases := []struct {
		name     string
		host     string
		values   map[string]cty.Value
		class    sdk.Class
		fallback bool // the phase's tcp_fallback
	}{
		{name: "malformed", host: "malformed.probe.test", class: sdk.ClassDNSMalformed},
		{name: "servfail", host: "servfail.probe.test", class: sdk.ClassDNSServFail},
		{name: "servfail allowed", host: "servfail.probe.test", values: map[string]cty.Value{"valid_rcodes": strs("SERVFAIL")}},
		{name: "truncated, asked over TCP", host: "truncated.probe.test", fallback: true},
		{name: "truncated without fallback", host: "truncated.probe.test", values: map[string]cty.Value{"tcp_fallback": cty.False}, class: sdk.ClassDNSTruncated},
		{name: "truncated, silent over TCP", host: "notcp.probe.test", values: map[string]cty.Value{"timeout": cty.StringVal("200ms")}, class: sdk.ClassDNSTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			values := with(c.values, "query_name", cty.StringVal(c.host))
			q, err := newQuery(t, values)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			resp, err := q.Dial(ctx, &sdk.DialRequest{Address: netip.MustParseAddrPort(s.Addr)})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %v, want well within the 3s deadline", took)
			}
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
			}
			if class != c.class {
				t.Errorf("class %q, want %q (%+v)", class, c.class, resp.Failure)
			}
			if fb, _ := resp.Phases[0].Attrs["tcp_fallback"].(bool); fb != c.fallback {
				t.Errorf("tcp_fallback %v, want %v", resp.Phases[0].Attrs["tcp_fallback"], c.fallback)
			}
		})
	}
}
