// Package dnsmiekg is the dns-miekg plugin. Its resolver resolves names by
// querying explicit DNS servers with github.com/miekg/dns over UDP, TCP, TLS
// (DoT) or HTTPS (DoH), failing over from one server to the next and
// retrying over TCP when a UDP reply is truncated, and reports every query it
// sent beside the facts of the reply that decided: the server, rcode, TTL, AD
// bit and size. Its dialer probes the target as a DNS server: it asks one
// question of any record type (SOA, MX, TXT, ...) and checks the reply's
// rcode and records, as blackbox_exporter's dns prober does; the exchange is
// the whole probe, phase "dns".
package dnsmiekg

import (
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Name is the plugin's name in pipeline files.
const Name = "dns-miekg"

// Phase is the name of the phase the dialer measures: the DNS exchange.
const Phase = "dns"

// The failure classes of the dialer's own checks; the exchange fails with
// the resolver's dns.* classes.
const (
	// ClassUnexpectedRcode is a NOERROR reply when valid_rcodes does not
	// list NOERROR (an error rcode not listed keeps its own class, such as
	// dns.nxdomain).
	ClassUnexpectedRcode sdk.Class = "dns.unexpected_rcode"
	// ClassRecordMismatch is a reply whose records fail a validate_*_rrs
	// regexp.
	ClassRecordMismatch sdk.Class = "dns.record_mismatch"
)

// Plugin returns the dns-miekg plugin: a Resolver, and a Dialer that hands
// on no connection.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.4.0",
			Description: "Resolves names by querying explicit DNS servers over UDP, TCP, TLS or HTTPS; probes a DNS server with a question of any type (miekg/dns).",
		},
		ResolverSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{
				Name:        "servers",
				Type:        cty.List(cty.String),
				Required:    true,
				Description: `The servers to query in order, as IP literals with an optional port ("9.9.9.9:53", "[2620:fe::fe]:853"); the port defaults to 53, 853 with transport "tls", 443 with "doh" (where they are the addresses to connect to for url).`,
			},
			{
				Name:        "transport",
				Type:        cty.String,
				Default:     cty.StringVal("udp"),
				Description: `How to send queries: "udp", "tcp", "tls" (DNS over TLS, RFC 7858) or "doh" (DNS over HTTPS, RFC 8484).`,
			},
			{
				Name:        "url",
				Type:        cty.String,
				Description: `With transport "doh": the https URL of the DoH endpoint ("https://dns.example/dns-query"); its host is the name the certificate is verified against and sent as SNI and Host.`,
			},
			{
				Name:        "method",
				Type:        cty.String,
				Description: `With transport "doh": "GET" (the query in the dns parameter, RFC 8484 §4.1) or "POST" (the query as the body); unset means "GET".`,
			},
			{
				Name:        "server_name",
				Type:        cty.String,
				Description: `With transport "tls": the name to verify the servers' certificates against and send as SNI; unset means each server's IP address.`,
			},
			{
				Name:        "ca_file",
				Type:        cty.String,
				Description: `With transport "tls" or "doh": a PEM file of the root certificates to trust; unset means the system's roots.`,
			},
			{
				Name:        "tcp_fallback",
				Type:        cty.Bool,
				Default:     cty.True,
				Description: `With transport "udp": ask the same server again over TCP when a reply is truncated (TC set).`,
			},
			{
				Name:        "query_types",
				Type:        cty.List(cty.String),
				Default:     cty.ListVal([]cty.Value{cty.StringVal("A"), cty.StringVal("AAAA")}),
				Description: `The address record types to ask for, "A" and/or "AAAA"; the queries run at once and the addresses are listed in this order.`,
			},
			{
				Name:        "edns_buffer_size",
				Type:        cty.Number,
				Default:     cty.NumberIntVal(1232),
				Description: "The UDP payload size to advertise in an EDNS0 OPT record, 512 to 65535; 0 sends no EDNS0.",
			},
			{
				Name:        "dnssec_ok",
				Type:        cty.Bool,
				Default:     cty.False,
				Description: "Set the DNSSEC OK (DO) bit in the EDNS0 OPT record; needs edns_buffer_size.",
			},
			{
				Name:        "timeout",
				Type:        cty.String,
				Default:     cty.StringVal("2s"),
				Description: "How long each query waits for its reply (a connection over TCP or TLS included) before the next server is tried.",
			},
			{
				Name:        "retries",
				Type:        cty.Number,
				Default:     cty.NumberIntVal(0),
				Description: "How many more times to go through the server list when no server replied.",
			},
			{
				Name:        "clock",
				Type:        cty.String,
				Default:     cty.StringVal("process"),
				Description: `Where the resolve phase's end comes from: "process", probe's clock when the answer has been read, or with transport "udp" "kernel", the kernel's stamp of the last reply's arrival (SO_TIMESTAMPNS), which a busy machine's wait to run probe does not lengthen. The phase's attribute "clock" says which it has.`,
			},
		}},
		NewResolver: func(cfg cty.Value) (sdk.Resolver, error) { return New(cfg) },
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "query_name", Type: cty.String, Required: true,
				Description: `The name to ask the target (a DNS server) about ("example.com").`},
			{Name: "query_type", Type: cty.String, Default: cty.StringVal("A"),
				Description: `The record type to ask for: any type miekg/dns knows ("A", "AAAA", "MX", "SOA", "TXT", "NS", "CNAME", "SRV", "CAA", "ANY", ...).`},
			{Name: "transport", Type: cty.String, Default: cty.StringVal("udp"),
				Description: `How to ask: "udp", "tcp" or "tls" (DNS over TLS, RFC 7858).`},
			{Name: "server_name", Type: cty.String,
				Description: `With transport "tls": the name to verify the server's certificate against and send as SNI; unset means the target's host.`},
			{Name: "ca_file", Type: cty.String,
				Description: `With transport "tls": a PEM file of the root certificates to trust; unset means the system's roots.`},
			{Name: "tcp_fallback", Type: cty.Bool, Default: cty.True,
				Description: `With transport "udp": ask again over TCP when the reply is truncated (TC set).`},
			{Name: "recursion_desired", Type: cty.Bool, Default: cty.True,
				Description: "Set the RD (recursion desired) bit; false asks an authoritative server for its own data only."},
			{Name: "edns_buffer_size", Type: cty.Number, Default: cty.NumberIntVal(1232),
				Description: "The UDP payload size to advertise in an EDNS0 OPT record, 512 to 65535; 0 sends no EDNS0."},
			{Name: "dnssec_ok", Type: cty.Bool, Default: cty.False,
				Description: "Set the DNSSEC OK (DO) bit in the EDNS0 OPT record; needs edns_buffer_size."},
			{Name: "timeout", Type: cty.String,
				Description: `How long the query waits for its reply, connection included ("2s"); unset means the attempt's deadline only.`},
			{Name: "valid_rcodes", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("NOERROR")}),
				Description: `The rcodes a reply may have ("NOERROR", "NXDOMAIN", ...); another fails the probe.`},
			{Name: "validate_answer_rrs", Type: cty.Map(cty.List(cty.String)),
				Description: `Regexps the answer section's records (as text) must pass: keys fail_if_matches_regexp, fail_if_not_matches_regexp, fail_if_all_match_regexp, fail_if_none_matches_regexp, as blackbox_exporter's.`},
			{Name: "validate_authority_rrs", Type: cty.Map(cty.List(cty.String)),
				Description: `As validate_answer_rrs, for the authority section.`},
			{Name: "validate_additional_rrs", Type: cty.Map(cty.List(cty.String)),
				Description: `As validate_answer_rrs, for the additional section (the OPT record of an EDNS0 reply included).`},
		}},
		NewDialer:  func(cfg cty.Value) (sdk.Dialer, error) { return NewQuery(cfg) },
		DialerConn: sdk.ConnNone,
	}
}
