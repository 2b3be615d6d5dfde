package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// adHoc is a target given on the command line or in PROBE_TARGETS.
type adHoc struct {
	host  string
	port  uint16
	proto string
}

// protos are the protocols an ad-hoc target may name.
var protos = []string{"tcp", "http", "https"}

// parseAdHoc parses "host:port[:proto]"; IPv6 hosts are bracketed
// ("[::1]:443:https"). The proto defaults to tcp.
func parseAdHoc(s string) (adHoc, error) {
	hostport, proto := s, "tcp"
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
	t := adHoc{host: host, port: port, proto: proto}
	if err := t.checkProto(); err != nil {
		return adHoc{}, fmt.Errorf("target %q: %w", s, err)
	}
	return t, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

func (a adHoc) checkProto() error {
	for _, p := range protos {
		if a.proto == p {
			return nil
		}
	}
	return fmt.Errorf("unknown protocol %q: use %s", a.proto, strings.Join(protos, ", "))
}

// withEnvTargets returns the file's targets plus those of PROBE_TARGETS, a
// comma-separated list of host:port[:proto]. Each uses the file's pipeline
// named after its proto when there is one, else the implied pipeline.
func withEnvTargets(file *config.File, pl *plugins, env string) ([]*engine.Target, error) {
	targets := file.Targets
	implied := map[string]*engine.Pipeline{}
	for _, s := range strings.Split(env, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := parseAdHoc(s)
		if err != nil {
			return nil, &exitError{code: exitUsage, msg: "PROBE_TARGETS: " + err.Error()}
		}
		p := file.Pipelines[a.proto]
		if p == nil {
			if p = implied[a.proto]; p == nil {
				if p, err = impliedPipeline(pl, a.proto, tlsOptions{}, ""); err != nil {
					return nil, err
				}
				implied[a.proto] = p
			}
		}
		targets = append(targets, &engine.Target{Name: s, Host: a.host, Port: a.port, Pipeline: p})
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
// http/1.1 unless told otherwise) and http for https, http alone for http.
func impliedPipeline(pl *plugins, proto string, tlsOpts tlsOptions, dnsServer string) (*engine.Pipeline, error) {
	plugins, err := pl.builtins()
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
	dial, err := newComponent(plugins, "dial-tcp", sdk.KindDialer, nil)
	if err != nil {
		return nil, err
	}
	p := &engine.Pipeline{
		Name:      proto,
		Resolvers: []engine.Route{route},
		Dialer:    engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "dial-tcp", Component: dial.(sdk.Dialer)},
	}
	if proto == "https" {
		cfg := map[string]cty.Value{"insecure_skip_verify": cty.BoolVal(tlsOpts.insecure),
			"alpn": cty.ListVal([]cty.Value{cty.StringVal("h2"), cty.StringVal("http/1.1")})}
		if tlsOpts.serverName != "" {
			cfg["server_name"] = cty.StringVal(tlsOpts.serverName)
		}
		if tlsOpts.caFile != "" {
			cfg["ca_file"] = cty.StringVal(tlsOpts.caFile)
		}
		if len(tlsOpts.alpn) > 0 {
			var vs []cty.Value
			for _, a := range tlsOpts.alpn {
				vs = append(vs, cty.StringVal(a))
			}
			cfg["alpn"] = cty.ListVal(vs)
		}
		hs, err := newComponent(plugins, "tls", sdk.KindHandshake, cfg)
		if err != nil {
			return nil, err
		}
		p.Handshakes = []engine.Stage[sdk.Handshaker]{{Name: "tls", Plugin: "tls", Component: hs.(sdk.Handshaker)}}
	}
	if proto == "http" || proto == "https" {
		hs, err := newComponent(plugins, "http", sdk.KindHandshake, nil)
		if err != nil {
			return nil, err
		}
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "http", Plugin: "http", Component: hs.(sdk.Handshaker)})
	}
	return p, nil
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
