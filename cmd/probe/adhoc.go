package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// adHoc is a target given on the command line or in PROBE_TARGETS.
type adHoc struct {
	// name is the target's name in the results: the text it was given as.
	name  string
	host  string
	port  uint16
	proto string
	// path is the http request target of a URL ("/healthz?full=1"); empty
	// means the http plugin's default, "/".
	path string
}

// protos are the protocols an ad-hoc target may name.
var protos = []string{"tcp", "http", "https", "icmp", "grpc", "grpcs", "quic", "h3", "ssh", "dns-udp", "smtp", "imap", "pop3", "postgres"}

// starttlsProtos are the protocols of protos that upgrade to TLS with the
// starttls handshake, each its protocol attribute.
var starttlsProtos = []string{"smtp", "imap", "pop3", "postgres"}

// rootSOAQuery is the datagram `probe test HOST PORT dns-udp` sends: a DNS
// query with ID 0x1234 and recursion desired for the root's SOA record, and
// dnsReply the pattern its reply must match: the same ID, the response bit
// set, whatever the rcode.
const (
	rootSOAQuery = "1234 0100 0001 0000 0000 0000 00 0006 0001"
	dnsReply     = `^\x12\x34[\x80-\xff]`
)

// parseHostPort parses "host:port[:proto]"; IPv6 hosts are bracketed
// ("[::1]:443:https"). The proto is empty when s names none.
func parseHostPort(s string) (adHoc, error) {
	hostport, proto := s, ""
	if i := strings.LastIndex(s, ":"); i >= 0 {
		if last := s[i+1:]; strings.Trim(last, "0123456789") != "" {
			hostport, proto = s[:i], last
		}
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return adHoc{}, fmt.Errorf("target %q: expected host:port[:proto]: %w", s, err)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return adHoc{}, fmt.Errorf("target %q: %w", s, err)
	}
	t := adHoc{name: s, host: host, port: port, proto: proto}
	if proto != "" {
		if err := t.checkProto(); err != nil {
			return adHoc{}, fmt.Errorf("target %q: %w", s, err)
		}
	}
	return t, nil
}

// parseAdHoc parses a PROBE_TARGETS entry, "host:port[:proto]", whose
// proto defaults to tcp.
func parseAdHoc(s string) (adHoc, error) {
	t, err := parseHostPort(s)
	if err != nil {
		return adHoc{}, err
	}
	if t.proto == "" {
		t.proto = "tcp"
	}
	return t, t.checkHost()
}

// parseURL parses an http or https URL as `probe test` takes it: the
// port defaults to the scheme's, and the path and query are the http
// request's.
func parseURL(s string) (adHoc, error) {
	u, err := url.Parse(s)
	if err != nil {
		return adHoc{}, fmt.Errorf("target %q: %w", s, err)
	}
	t := adHoc{name: s, host: u.Hostname(), proto: u.Scheme, path: u.RequestURI()}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return adHoc{}, fmt.Errorf("target %q: unknown URL scheme %q: use http:// or https://, or host:port for tcp", s, u.Scheme)
	case u.User != nil:
		u.User = nil // the error names no password
		return adHoc{}, fmt.Errorf("target %q: probe sends no credentials from a URL: remove the user:password@ part", u.String())
	case t.host == "":
		return adHoc{}, fmt.Errorf("target %q: the URL names no host", s)
	case u.Port() == "" && u.Scheme == "http":
		t.port = 80
	case u.Port() == "":
		t.port = 443
	default:
		if t.port, err = parsePort(u.Port()); err != nil {
			return adHoc{}, fmt.Errorf("target %q: %w", s, err)
		}
	}
	return t, t.checkHost()
}

// parseTestArgs parses the target of `probe test`: a URL
// ("https://host:8443/path?q"), host:port[:proto], or HOST PORT [PROTO].
// Without a protocol, port 443 is https and any other port tcp; guessed
// says the protocol was chosen so.
func parseTestArgs(args []string) (t adHoc, guessed bool, err error) {
	switch {
	case len(args) == 1 && strings.Contains(args[0], "://"):
		t, err = parseURL(args[0])
		return t, false, err
	case len(args) == 1:
		if t, err = parseHostPort(args[0]); err != nil {
			return adHoc{}, false, fmt.Errorf("%w; or give HOST PORT, or a URL such as https://%s/", err, args[0])
		}
	default:
		host := args[0]
		if strings.Contains(host, "://") {
			return adHoc{}, false, fmt.Errorf("target %q: a URL names its own port and protocol: probe test URL", host)
		}
		if h, ok := strings.CutPrefix(host, "["); ok { // [::1], as in a URL
			host, _ = strings.CutSuffix(h, "]")
		}
		t = adHoc{name: args[0], host: host}
		if t.port, err = parsePort(args[1]); err != nil {
			return adHoc{}, false, err
		}
		if len(args) == 3 {
			t.proto = args[2]
		}
	}
	if err := t.checkHost(); err != nil {
		return adHoc{}, false, err
	}
	if t.proto == "" {
		guessed, t.proto = true, "tcp"
		if t.port == 443 {
			t.proto = "https"
		}
	}
	return t, guessed, t.checkProto()
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// checkHost refuses a host that no resolver may see (engine.CheckHost): a
// NUL, an escape sequence or another control character.
func (a adHoc) checkHost() error {
	if err := engine.CheckHost(a.host); err != nil {
		return fmt.Errorf("target %q: %w", a.name, err)
	}
	return nil
}

func (a adHoc) checkProto() error {
	for _, p := range protos {
		if a.proto == p {
			return nil
		}
	}
	return fmt.Errorf("unknown protocol %q: use %s", a.proto, strings.Join(protos, ", "))
}

// tlsHint is the line that tells how to probe a with TLS and HTTP, when it
// was probed as tcp because its command line named no protocol.
func (a adHoc) tlsHint() string {
	return fmt.Sprintf("hint: probed as TCP only; for TLS and HTTP: probe test https://%s/", net.JoinHostPort(a.host, strconv.Itoa(int(a.port))))
}

// parseEnvTargets parses PROBE_TARGETS, a comma-separated list of
// host:port[:proto].
func parseEnvTargets(env string) ([]adHoc, error) {
	var out []adHoc
	for _, s := range strings.Split(env, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := parseAdHoc(s)
		if err != nil {
			return nil, &exitError{code: exitUsage, msg: "PROBE_TARGETS: " + err.Error()}
		}
		out = append(out, a)
	}
	return out, nil
}

// adHocTargets returns the targets of ads. Each uses the pipeline of
// pipelines (a file's, or nil) named after its proto when there is one, else
// the implied pipeline.
func adHocTargets(ads []adHoc, pipelines map[string]*engine.Pipeline, pl *pluginhost.Loader) ([]*engine.Target, error) {
	var targets []*engine.Target
	implied := map[string]*engine.Pipeline{}
	for _, a := range ads {
		p := pipelines[a.proto]
		if p == nil {
			if p = implied[a.proto]; p == nil {
				var err error
				if p, err = impliedPipeline(pl, a, tlsOptions{}, ""); err != nil {
					return nil, err
				}
				implied[a.proto] = p
			}
		}
		targets = append(targets, &engine.Target{Name: a.name, Host: a.host, Port: a.port, Pipeline: p})
	}
	return targets, nil
}

// tlsOptions are the tls handshake settings `probe test` exposes.
type tlsOptions struct {
	serverName string
	caFile     string
	insecure   bool
	alpn       []string
}

// impliedPipeline is the pipeline of an ad-hoc target: the system resolver
// (or dns-miekg asking dnsServer), dial-tcp, then tls (offering h2 and
// http/1.1 unless told otherwise) and http for https, http alone for http;
// the http handshake asks for the target's path. For icmp the dialer is
// icmp (one echo request an attempt) and nothing follows it. grpc is
// grpc-health over TCP, grpcs over tls offering h2 only. quic is the quic
// dialer alone (its TLS options those of tls), h3 the quic dialer and
// http3. For ssh, the ssh handshake; for dns-udp, dial-udp and udp-payload
// with a DNS query; for smtp, imap, pop3 and postgres, the starttls
// handshake then tls (offering no ALPN protocol unless told).
func impliedPipeline(pl *pluginhost.Loader, a adHoc, tlsOpts tlsOptions, dnsServer string) (*engine.Pipeline, error) {
	proto := a.proto
	plugins, err := pl.Builtins()
	if err != nil {
		return nil, err
	}
	resolverPlugin := "dns-system"
	resolverCfg := map[string]cty.Value{}
	if dnsServer != "" {
		resolverPlugin = "dns-miekg"
		resolverCfg["servers"] = cty.ListVal([]cty.Value{cty.StringVal(dnsServer)})
	}
	res, err := newComponent(plugins, resolverPlugin, sdk.KindResolver, resolverCfg)
	if err != nil {
		return nil, err
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "implied", Plugin: resolverPlugin, Component: res.(sdk.Resolver)}, nil)
	if err != nil {
		return nil, err
	}
	dialName, dialPlugin, dialCfg := "tcp", "dial-tcp", map[string]cty.Value(nil)
	switch proto {
	case "icmp":
		dialName, dialPlugin = "icmp", "icmp"
	case "dns-udp":
		dialName, dialPlugin = "udp", "dial-udp"
	case "quic", "h3":
		dialName, dialPlugin, dialCfg = "quic", "quic", tlsOpts.config()
		if len(tlsOpts.alpn) == 0 {
			dialCfg["alpn"] = cty.ListVal([]cty.Value{cty.StringVal("h3")})
		}
	}
	dial, err := newComponent(plugins, dialPlugin, sdk.KindDialer, dialCfg)
	if err != nil {
		return nil, err
	}
	p := &engine.Pipeline{
		Name:      proto,
		Resolvers: []engine.Route{route},
		Dialer:    engine.Stage[sdk.Dialer]{Name: dialName, Plugin: dialPlugin, Component: dial.(sdk.Dialer)},
	}
	if proto == "dns-udp" {
		hs, err := newComponent(plugins, "udp-payload", sdk.KindHandshake,
			map[string]cty.Value{"payload_hex": cty.StringVal(rootSOAQuery), "expect": cty.StringVal(dnsReply)})
		if err != nil {
			return nil, err
		}
		p.Handshakes = []engine.Stage[sdk.Handshaker]{{Name: "dns", Plugin: "udp-payload", Component: hs.(sdk.Handshaker)}}
	}
	upgrade := slices.Contains(starttlsProtos, proto)
	if upgrade {
		hs, err := newComponent(plugins, "starttls", sdk.KindHandshake, map[string]cty.Value{"protocol": cty.StringVal(proto)})
		if err != nil {
			return nil, err
		}
		p.Handshakes = []engine.Stage[sdk.Handshaker]{{Name: "starttls", Plugin: "starttls", Component: hs.(sdk.Handshaker)}}
	}
	if proto == "https" || proto == "grpcs" || upgrade {
		cfg := tlsOpts.config()
		if len(tlsOpts.alpn) == 0 {
			switch proto {
			case "https":
				cfg["alpn"] = cty.ListVal([]cty.Value{cty.StringVal("h2"), cty.StringVal("http/1.1")})
			case "grpcs":
				cfg["alpn"] = cty.ListVal([]cty.Value{cty.StringVal("h2")})
			}
		}
		hs, err := newComponent(plugins, "tls", sdk.KindHandshake, cfg)
		if err != nil {
			return nil, err
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "tls", Plugin: "tls", Component: hs.(sdk.Handshaker)})
	}
	if proto == "ssh" {
		hs, err := newComponent(plugins, "ssh", sdk.KindHandshake, nil)
		if err != nil {
			return nil, err
		}
		p.Handshakes = []engine.Stage[sdk.Handshaker]{{Name: "ssh", Plugin: "ssh", Component: hs.(sdk.Handshaker)}}
	}
	if proto == "grpc" || proto == "grpcs" {
		hs, err := newComponent(plugins, "grpc-health", sdk.KindHandshake, nil)
		if err != nil {
			return nil, err
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "grpc", Plugin: "grpc-health", Component: hs.(sdk.Handshaker)})
	}
	if proto == "h3" {
		cfg := map[string]cty.Value{}
		if a.path != "" {
			cfg["path"] = cty.StringVal(a.path)
		}
		hs, err := newComponent(plugins, "http3", sdk.KindHandshake, cfg)
		if err != nil {
			return nil, err
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "http3", Plugin: "http3", Component: hs.(sdk.Handshaker)})
	}
	if proto == "http" || proto == "https" {
		cfg := map[string]cty.Value{}
		if a.path != "" {
			cfg["path"] = cty.StringVal(a.path)
		}
		hs, err := newComponent(plugins, "http", sdk.KindHandshake, cfg)
		if err != nil {
			return nil, err
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "http", Plugin: "http", Component: hs.(sdk.Handshaker)})
	}
	return p, nil
}

// config returns the attributes of a tls handshake (or a quic dialer)
// that o sets.
func (o tlsOptions) config() map[string]cty.Value {
	cfg := map[string]cty.Value{"insecure_skip_verify": cty.BoolVal(o.insecure)}
	if o.serverName != "" {
		cfg["server_name"] = cty.StringVal(o.serverName)
	}
	if o.caFile != "" {
		cfg["ca_file"] = cty.StringVal(o.caFile)
	}
	if len(o.alpn) > 0 {
		var vs []cty.Value
		for _, a := range o.alpn {
			vs = append(vs, cty.StringVal(a))
		}
		cfg["alpn"] = cty.ListVal(vs)
	}
	return cfg
}

// newComponent configures a built-in plugin's component from Go values.
func newComponent(plugins map[string]*sdk.Plugin, name string, k sdk.Kind, values map[string]cty.Value) (any, error) {
	p := plugins[name]
	cfg, err := p.Schema(k).Config(values)
	if err != nil {
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf("%s %s: %v", name, k, err)}
	}
	c, err := p.New(k, cfg)
	if err != nil {
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf("%s %s: %v", name, k, err)}
	}
	return c, nil
}
