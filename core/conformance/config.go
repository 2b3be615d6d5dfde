package conformance

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Servers a handshake may be checked against (a handshake block's server).
const (
	ServerEcho     = "echo"     // echoes what it reads (the default)
	ServerGreeting = "greeting" // sends "SSH-2.0-probe-check" and a CRLF first
	ServerTLS      = "tls"      // TLS, a certificate for api.probe.test from lab.ca_file's CA
	ServerHTTP     = "http"     // HTTP/1.1 in clear, 200 "ok" for every request
	ServerGRPC     = "grpc"     // gRPC in clear (h2c) with grpc-go's health service, every service SERVING
	ServerHTTP3    = "http3"    // HTTP/3 over QUIC on a UDP port, the TLS server's certificate, 200 "ok"
	ServerUDP      = "udp"      // echoes each datagram it reads, on a UDP port
	ServerSSH      = "ssh"      // SSH (golang.org/x/crypto/ssh) with an ed25519 host key made at the check's start
	ServerSMTP     = "smtp"     // SMTP up to STARTTLS, then the TLS server's TLS
	ServerDNS      = "dns"      // the check's DNS server (lab.dns): the target of a dialer of no connection that asks a DNS server (dns-miekg's)
)

var servers = []string{ServerEcho, ServerGreeting, ServerTLS, ServerHTTP, ServerGRPC, ServerHTTP3, ServerUDP, ServerSSH, ServerSMTP, ServerDNS}

// dialerServers are the servers a dialer may be checked against: TCP's
// echo server, UDP's for a dialer of UDP sockets, or the DNS server for a
// dialer of no connection whose probe is a DNS query.
var dialerServers = []string{ServerEcho, ServerUDP, ServerDNS}

// File is a check file: how each component of the binary is configured and
// checked, by kind and plugin name. A component it does not name is checked
// with its schema's defaults.
type File struct {
	components map[key]*Component
}

type key struct {
	kind   sdk.Kind
	plugin string
}

// Component is how one component is checked.
type Component struct {
	// Config are the attributes it is configured with.
	Config map[string]cty.Value
	// Reject are attributes, beside Config, that its constructor must
	// refuse with an error naming one of them; nil skips that check.
	Reject map[string]cty.Value
	// Host is the host of every request: the name a resolver resolves
	// (default api.probe.test, which the check's DNS server, lab.dns,
	// answers with 127.0.0.1), the host a dialer or handshake is told.
	Host string
	// Want are the addresses a resolver must answer; empty accepts any.
	Want []netip.Addr
	// WantFailure is the failure class the component's call must end in
	// instead of succeeding, for a component that cannot succeed where the
	// check runs (a tailnet's without a tailnet); "" wants success.
	WantFailure sdk.Class
	// FailHost is a name the resolver must fail to resolve, as data
	// (default nope.probe.test); "" skips that check.
	FailHost string
	// Server is the server a handshake runs against: one of the Server
	// constants, ServerEcho by default. A dialer of sockets is checked
	// against ServerEcho, or ServerUDP for a dialer of UDP sockets; a
	// handshake against ServerUDP runs over a UDP socket.
	Server string
	// Via is the address a dialer's socket is connected to instead of the
	// target's: a proxy dialer's proxy; "" wants the target's.
	Via string
	// Skip, when set, says why the component is not checked (a proxy
	// dialer without a proxy to run through): every row of it is skipped
	// with that reason.
	Skip string
}

// block is a component block of a check file.
type block struct {
	Plugin      string    `hcl:"plugin,label"`
	Config      cty.Value `hcl:"config,optional"`
	Reject      cty.Value `hcl:"reject,optional"`
	Host        *string   `hcl:"host,optional"`
	Want        []string  `hcl:"want,optional"`
	WantFailure *string   `hcl:"want_failure,optional"`
	FailHost    *string   `hcl:"fail_host,optional"`
	Server      *string   `hcl:"server,optional"`
	Via         *string   `hcl:"via,optional"`
	Skip        *string   `hcl:"skip,optional"`
}

type fileBody struct {
	Resolvers  []block `hcl:"resolver,block"`
	Dialers    []block `hcl:"dialer,block"`
	Handshakes []block `hcl:"handshake,block"`
}

// LabVars are the values a check file refers to as lab.NAME: for the
// servers the check starts, dns (host:port of its DNS server, zone
// probe.test) and ca_file (the PEM of the CA of its TLS and HTTP/3
// servers); and the proxies the caller gives (probe plugins check
// --socks5-proxy, --http-proxy), socks5_proxy and http_proxy (host:port,
// "" when none was given).
type LabVars struct {
	DNS         string
	CAFile      string
	Socks5Proxy string
	HTTPProxy   string
}

// ParseFile parses a check file, src named filename, with the lab's
// values in scope.
func ParseFile(filename string, src []byte, lab LabVars) (*File, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	var body fileBody
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"lab": cty.ObjectVal(map[string]cty.Value{
		"dns": cty.StringVal(lab.DNS), "ca_file": cty.StringVal(lab.CAFile),
		"socks5_proxy": cty.StringVal(lab.Socks5Proxy), "http_proxy": cty.StringVal(lab.HTTPProxy)})}}
	if diags := gohcl.DecodeBody(f.Body, ctx, &body); diags.HasErrors() {
		return nil, diags
	}
	out := &File{components: map[key]*Component{}}
	for _, kb := range []struct {
		kind   sdk.Kind
		blocks []block
	}{{sdk.KindResolver, body.Resolvers}, {sdk.KindDialer, body.Dialers}, {sdk.KindHandshake, body.Handshakes}} {
		for _, b := range kb.blocks {
			k := key{kb.kind, b.Plugin}
			if out.components[k] != nil {
				return nil, fmt.Errorf("%s: two %s blocks for plugin %q", filename, kb.kind, b.Plugin)
			}
			c, err := b.component()
			if err == nil && kb.kind == sdk.KindDialer && !slices.Contains(dialerServers, c.Server) {
				err = fmt.Errorf("server %q: a dialer is checked against one of %v", c.Server, dialerServers)
			}
			if err == nil && kb.kind != sdk.KindDialer && c.Server == ServerDNS {
				err = fmt.Errorf("server %q: only a dialer of no connection is checked against the DNS server", c.Server)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s %q: %w", filename, kb.kind, b.Plugin, err)
			}
			out.components[k] = c
		}
	}
	return out, nil
}

// component returns the settings of b, defaults applied.
func (b block) component() (*Component, error) {
	c := defaults()
	var err error
	if c.Config, err = object("config", b.Config); err != nil {
		return nil, err
	}
	if c.Reject, err = object("reject", b.Reject); err != nil {
		return nil, err
	}
	if b.Host != nil {
		c.Host = *b.Host
	}
	for _, w := range b.Want {
		a, err := netip.ParseAddr(w)
		if err != nil {
			return nil, fmt.Errorf("want: %w", err)
		}
		c.Want = append(c.Want, a)
	}
	if b.WantFailure != nil {
		c.WantFailure = sdk.Class(*b.WantFailure)
	}
	if b.FailHost != nil {
		c.FailHost = *b.FailHost
	}
	if b.Server != nil {
		if !slices.Contains(servers, *b.Server) {
			return nil, fmt.Errorf("server %q: want one of %v", *b.Server, servers)
		}
		c.Server = *b.Server
	}
	if b.Via != nil {
		c.Via = *b.Via
	}
	if b.Skip != nil {
		c.Skip = *b.Skip
	}
	return c, nil
}

// object returns the attributes of an object or map value, nil for none.
func object(name string, v cty.Value) (map[string]cty.Value, error) {
	if v == cty.NilVal || v.IsNull() {
		return nil, nil
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() || !v.IsWhollyKnown() {
		return nil, fmt.Errorf("%s: want an object of attributes, { name = value }, got %s", name, v.Type().FriendlyName())
	}
	return v.AsValueMap(), nil
}

func defaults() *Component {
	return &Component{Host: "api.probe.test", FailHost: "nope.probe.test", Server: ServerEcho}
}

// component returns how the component of kind k of plugin is checked.
func (f *File) component(k sdk.Kind, plugin string) *Component {
	if f != nil {
		if c := f.components[key{k, plugin}]; c != nil {
			return c
		}
	}
	return defaults()
}
