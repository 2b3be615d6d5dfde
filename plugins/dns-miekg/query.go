package dnsmiekg

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Query is the dns-miekg dialer: it asks the target, a DNS server, one
// question of any record type and checks the reply's rcode and records.
// The exchange is the whole probe (sdk.ConnNone). It is safe for
// concurrent use.
type Query struct {
	r          *Resolver // how to ask: transport, fallback, EDNS0, timeout, valid rcodes, RD
	name       string    // the question's name, fully qualified
	qtype      uint16
	serverName string // with transport "tls"; "" means the target's host
	roots      *x509.CertPool
	checks     [3]rrCheck // of the answer, authority and additional sections
}

// rrCheck is blackbox_exporter's validate_*_rrs of one section: regexps
// matched against each record in presentation format (dns.RR.String).
type rrCheck struct {
	matches    []*regexp.Regexp // fail when a record matches one
	notMatches []*regexp.Regexp // fail when a record does not match one, or there is no record
	allMatch   []*regexp.Regexp // fail unless every record matches each (blackbox's behaviour, despite the name)
	noneMatch  []*regexp.Regexp // fail when no record matches any, or there is no record
}

// sections are the names of the attributes, and of the phase's record
// lists, of a reply's three sections, in Query.checks order.
var sections = [3]string{"answer", "authority", "additional"}

// checkKeys are the keys of a validate_*_rrs attribute.
var checkKeys = []string{"fail_if_matches_regexp", "fail_if_not_matches_regexp", "fail_if_all_match_regexp", "fail_if_none_matches_regexp"}

// NewQuery returns a Query configured by cfg, a value of the plugin's
// dialer schema. It reads ca_file. A bad attribute is reported as an
// *sdk.AttrError.
func NewQuery(cfg cty.Value) (*Query, error) {
	name := sdk.String(cfg, "query_name")
	q := &Query{name: dns.Fqdn(name), serverName: sdk.String(cfg, "server_name")}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, sdk.AttrErrorf("query_name", "Invalid query name", `query_name must be a domain name such as "example.com", got %q.`, name)
	}
	qt := strings.ToUpper(sdk.String(cfg, "query_type"))
	var ok bool
	if q.qtype, ok = dns.StringToType[qt]; !ok || q.qtype == dns.TypeNone {
		return nil, sdk.AttrErrorf("query_type", "Invalid query type",
			`query_type must be a record type such as "A", "AAAA", "MX", "SOA", "TXT", "NS", "SRV", "CAA" or "ANY", got %q.`, sdk.String(cfg, "query_type"))
	}
	r := &Resolver{transport: sdk.String(cfg, "transport"), fallback: sdk.Bool(cfg, "tcp_fallback"), do: sdk.Bool(cfg, "dnssec_ok"),
		norec: !sdk.Bool(cfg, "recursion_desired")}
	switch r.transport {
	case "udp", "tcp":
		if err := notUsed(cfg, r.transport, "server_name", "ca_file"); err != nil {
			return nil, err
		}
	case "tls":
	default:
		return nil, sdk.AttrErrorf("transport", "Invalid transport",
			`transport must be "udp", "tcp" or "tls", got %q. (DNS over HTTPS asks a URL's endpoint: use the dns-miekg resolver for it.)`, r.transport)
	}
	var err error
	if path := sdk.String(cfg, "ca_file"); path != "" {
		if q.roots, err = loadRoots(path); err != nil {
			return nil, err
		}
	}
	if err := r.readEDNS(cfg); err != nil {
		return nil, err
	}
	if r.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	codes := sdk.Strings(cfg, "valid_rcodes")
	if len(codes) == 0 {
		return nil, sdk.AttrErrorf("valid_rcodes", "No valid rcodes", `valid_rcodes must list at least one rcode, such as "NOERROR".`)
	}
	r.rcodes = []int{}
	for _, c := range codes {
		rc, ok := dns.StringToRcode[strings.ToUpper(c)]
		if !ok {
			return nil, sdk.AttrErrorf("valid_rcodes", "Invalid rcode",
				`valid_rcodes must list rcodes such as "NOERROR", "NXDOMAIN", "SERVFAIL" or "REFUSED", got %q.`, c)
		}
		r.rcodes = append(r.rcodes, rc)
	}
	q.r = r
	for i, sec := range sections {
		if q.checks[i], err = parseCheck(cfg, "validate_"+sec+"_rrs"); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// parseCheck reads a validate_*_rrs attribute: a map from checkKeys to
// lists of regexps.
func parseCheck(cfg cty.Value, attr string) (rrCheck, error) {
	var c rrCheck
	v := sdk.Value(cfg, attr)
	if v.IsNull() || !v.IsKnown() {
		return c, nil
	}
	for it := v.ElementIterator(); it.Next(); {
		k, list := it.Element()
		key := k.AsString()
		var dst *[]*regexp.Regexp
		switch key {
		case checkKeys[0]:
			dst = &c.matches
		case checkKeys[1]:
			dst = &c.notMatches
		case checkKeys[2]:
			dst = &c.allMatch
		case checkKeys[3]:
			dst = &c.noneMatch
		default:
			return c, sdk.AttrErrorf(attr, "Unknown check", `%s takes the keys "%s", got %q.`, attr, strings.Join(checkKeys, `", "`), key)
		}
		if list.IsNull() {
			continue
		}
		for e := list.ElementIterator(); e.Next(); {
			_, s := e.Element()
			re, err := regexp.Compile(s.AsString())
			if err != nil {
				return c, sdk.AttrErrorf(attr, "Invalid regexp", "%s.%s: %s.", attr, key, err)
			}
			*dst = append(*dst, re)
		}
	}
	return c, nil
}

// check returns why the records rrs of a section fail c, "" when they
// pass. It follows blackbox_exporter's validRRs.
func (c *rrCheck) check(rrs []dns.RR) string {
	if len(rrs) == 0 && len(c.notMatches) > 0 {
		return "no record, and fail_if_not_matches_regexp needs one"
	}
	if len(rrs) == 0 && len(c.noneMatch) > 0 {
		return "no record, and fail_if_none_matches_regexp needs one"
	}
	allMatch, anyMatch := true, false
	for _, rr := range rrs {
		text := rr.String()
		for _, re := range c.matches {
			if re.MatchString(text) {
				return fmt.Sprintf("%q matches fail_if_matches_regexp %q", text, re)
			}
		}
		for _, re := range c.allMatch {
			allMatch = allMatch && re.MatchString(text)
		}
		for _, re := range c.notMatches {
			if !re.MatchString(text) {
				return fmt.Sprintf("%q does not match fail_if_not_matches_regexp %q", text, re)
			}
		}
		for _, re := range c.noneMatch {
			anyMatch = anyMatch || re.MatchString(text)
		}
	}
	if len(c.allMatch) > 0 && !allMatch {
		return "not every record matches fail_if_all_match_regexp"
	}
	if len(c.noneMatch) > 0 && !anyMatch {
		return "no record matches fail_if_none_matches_regexp"
	}
	return ""
}

// Dial asks the DNS server at req.Address the configured question, once
// (a truncated UDP reply again over TCP with tcp_fallback), and checks the
// reply's rcode against valid_rcodes and its sections against the
// validate_*_rrs regexps. The phase "dns" runs from the call to the end of
// the checks; it hands on no connection.
func (q *Query) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	span := sdk.StartSpan(Phase, callAt)
	s := server{addr: req.Address.String(), udp: net.UDPAddrFromAddrPort(req.Address)}
	if q.r.transport == "tls" {
		name := q.serverName
		if name == "" {
			name = strings.Trim(req.Host, "[]")
		}
		if name == "" {
			name = req.Address.Addr().String()
		}
		s.tls = &tls.Config{ServerName: name, RootCAs: q.roots, MinVersion: tls.VersionTLS12}
	}
	l := q.r.lookup(ctx, callAt, []server{s}, q.name, q.qtype)

	attrs := map[string]any{"server": s.addr, "transport": q.r.transport, "query_name": q.name, "query_type": dns.TypeToString[q.qtype]}
	tries := make([]any, len(l.tries))
	for i := range l.tries {
		tries[i] = l.tries[i].attrs()
	}
	attrs["tries"] = tries
	fail := l.fail
	if rep := l.reply; rep != nil {
		attrs["rcode"] = rcodeString(rep.msg.Rcode)
		attrs["rtt_ms"] = sdk.Milliseconds(rep.rtt)
		attrs["size"] = rep.size
		attrs["ad"] = rep.msg.AuthenticatedData
		if last := l.tries[len(l.tries)-1]; last.transport != "udp" {
			attrs["connect_ms"] = sdk.Milliseconds(last.connect)
		}
		if q.r.transport == "udp" {
			attrs["tcp_fallback"] = rep.transport == "tcp"
		}
		for i, rrs := range [3][]dns.RR{rep.msg.Answer, rep.msg.Ns, rep.msg.Extra} {
			text := make([]string, len(rrs))
			for j, rr := range rrs {
				text[j] = rr.String()
			}
			attrs[sections[i]+"_rrs"], attrs[sections[i]] = len(rrs), text
		}
		for _, rr := range rep.msg.Answer {
			if soa, ok := rr.(*dns.SOA); ok {
				attrs["serial"] = int64(soa.Serial)
				break
			}
		}
		for i := range q.checks {
			if fail != nil {
				break
			}
			if why := q.checks[i].check([][]dns.RR{rep.msg.Answer, rep.msg.Ns, rep.msg.Extra}[i]); why != "" {
				fail = &sdk.Failure{Class: ClassRecordMismatch,
					Message: fmt.Sprintf("%s: %s section: %s", what(q.name, q.qtype, s), sections[i], why)}
			}
		}
	}
	if fail != nil {
		fail.Phase = Phase
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, attrs)}, Failure: fail}, nil
	}
	return &sdk.DialResponse{Phases: []sdk.Phase{span.End(true, attrs)}}, nil
}

var _ sdk.Dialer = (*Query)(nil)
