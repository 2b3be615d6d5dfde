// Package blackbox converts a blackbox_exporter configuration (blackbox.yml)
// into a probe pipeline file: each module becomes a pipeline of the built-in
// plugins, and each target of the Prometheus scrape jobs that ask for it (a
// prometheus.yml, optionally) a target block. Every option that probe cannot
// express is reported with its line in the YAML file and why, never
// dropped silently; secrets become sensitive variables, whose values the
// generated file does not hold.
package blackbox

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// Note is an option of the configuration that the pipeline file does not
// carry as blackbox meant it, with the line it is on.
type Note struct {
	// File is the YAML file's name as given, Line its line (1-based).
	File string
	Line int
	// Module is the blackbox module, "" for a scrape job's note.
	Module string
	// Option is the option's path in the module ("http.body"), or the
	// scrape job's name.
	Option string
	// Reason says why it is not expressed, or how differently.
	Reason string
}

func (n Note) String() string {
	where := n.File
	if n.Line > 0 {
		where += ":" + strconv.Itoa(n.Line)
	}
	if n.Module != "" {
		return fmt.Sprintf("%s: module %s: %s: %s", where, n.Module, n.Option, n.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", where, n.Option, n.Reason)
}

// Target is a blackbox target a scrape job asks for with a module.
type Target struct {
	Job, Module, Target string
	// File and Line say where the target is written.
	File string
	Line int
}

// Result is a converted configuration.
type Result struct {
	// HCL is the pipeline file.
	HCL []byte
	// Notes are the options not expressed, in file order.
	Notes []Note
	// Pipelines are the names of the pipelines written, one or more per
	// module expressed; Modules maps each module to its pipelines.
	Pipelines []string
	Modules   map[string][]string
	// Secrets are the sensitive variables the file declares without a
	// value: set each with PROBE_VAR_NAME or -var NAME=VALUE.
	Secrets []string
}

// converter holds one conversion's state.
type converter struct {
	file    string
	notes   []Note
	body    *hclwrite.Body
	res     *Result
	blocks  []*hclwrite.Block // components, then pipelines, in order
	pipes   []*hclwrite.Block
	vars    []*hclwrite.Block
	targets []*hclwrite.Block
	// resolvers are the resolver blocks written, by name.
	resolvers map[string]bool
	// pipelineOf maps module and target kind ("https", "http", "tcp",
	// "dns SERVER") to its pipeline's name.
	pipelineOf map[string]string
	modules    map[string]*module
	names      map[string]bool // block names taken, per kind and name
}

// module is a module as read, with what its targets need.
type module struct {
	name    string
	line    int
	prober  string
	timeout string
	// ok: the prober is one probe expresses; http, tcp, dns, icmp and
	// grpc hold what its section says.
	ok   bool
	http *httpSpec
	tcp  *tcpSpec
	dns  *dnsSpec
	icmp *icmpSpec
	grpc *grpcSpec
	// timeoutLine is timeout's line; targets the number of target blocks
	// written for the module.
	timeoutLine, targets int
	proberLine           int
}

// Convert converts the blackbox configuration src, read from file, with
// targets (from PrometheusTargets; none is fine) into a pipeline file. An
// error means src is not a blackbox configuration at all; everything else
// is a Note.
func Convert(file string, src []byte, targets []Target) (*Result, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: expected a mapping with a modules key", file)
	}
	root := newObj(doc.Content[0])
	mods := root.get("modules")
	if mods == nil || mods.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: no modules: mapping", file)
	}
	c := &converter{file: file, res: &Result{Modules: map[string][]string{}}, resolvers: map[string]bool{},
		pipelineOf: map[string]string{}, modules: map[string]*module{}, names: map[string]bool{}}
	f := hclwrite.NewEmptyFile()
	c.body = f.Body()
	for _, k := range root.rest() {
		c.note(k.Line, "", k.Value, "not a blackbox_exporter option: ignored")
	}
	c.body.AppendUnstructuredTokens(comment(fmt.Sprintf("Converted from %s by probe import blackbox.", file)))
	serve := hclwrite.NewBlock("serve", nil)
	serve.Body().AppendUnstructuredTokens(comment("blackbox_exporter's metric names on /probe, beside probe's own"))
	serve.Body().SetAttributeValue("blackbox_names", cty.True)
	c.blocks = append(c.blocks, serve)
	dialer := hclwrite.NewBlock("dialer", []string{"tcp"})
	dialer.Body().SetAttributeValue("plugin", cty.StringVal("dial-tcp"))
	c.blocks = append(c.blocks, dialer)

	for i := 0; i+1 < len(mods.Content); i += 2 {
		key, val := mods.Content[i], mods.Content[i+1]
		c.module(key, val)
	}
	for _, t := range targets {
		c.target(t)
	}
	// Modules that no target asked for still get their pipelines.
	for _, name := range c.order() {
		m := c.modules[name]
		if !m.ok {
			continue
		}
		if m.timeout != "" && m.targets == 0 {
			c.note(m.timeoutLine, name, "timeout", "a timeout is a target's in probe (or the run block's): "+
				"no target of this module here to carry it (--prometheus)")
		}
		switch {
		case m.prober == "http" && len(c.res.Modules[name]) == 0:
			scheme := "https"
			if m.http.ssl == "never" {
				scheme = "http"
			}
			c.httpPipeline(m, scheme, "/")
		case m.prober == "tcp":
			c.tcpPipeline(m)
		case m.prober == "icmp":
			c.icmpPipeline(m)
		case m.prober == "grpc":
			c.grpcPipeline(m)
		case m.prober == "dns":
			c.dnsPipeline(m)
		}
	}

	for _, blocks := range [][]*hclwrite.Block{c.vars, c.blocks, c.pipes, c.targets} {
		for _, b := range blocks {
			c.body.AppendNewline()
			c.body.AppendBlock(b)
		}
	}
	c.res.HCL = hclwrite.Format(f.Bytes())
	c.res.Notes = c.notes
	sort.SliceStable(c.res.Notes, func(i, j int) bool {
		a, b := c.res.Notes[i], c.res.Notes[j]
		if a.File != b.File {
			return a.File == file
		}
		return a.Line < b.Line
	})
	return c.res, nil
}

// order returns the modules' names in file order.
func (c *converter) order() []string {
	names := make([]string, 0, len(c.modules))
	for n := range c.modules {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c.modules[names[i]].line < c.modules[names[j]].line })
	return names
}

func comment(text string) hclwrite.Tokens {
	var toks hclwrite.Tokens
	for _, line := range strings.Split(text, "\n") {
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComment, Bytes: []byte("# " + line + "\n")})
	}
	return toks
}

func (c *converter) note(line int, module, option, reason string) {
	c.notes = append(c.notes, Note{File: c.file, Line: line, Module: module, Option: option, Reason: reason})
}

// module reads one module and writes what it needs before targets.
func (c *converter) module(key, val *yaml.Node) {
	m := &module{name: key.Value, line: key.Line}
	c.modules[m.name] = m
	if val.Kind != yaml.MappingNode {
		c.note(key.Line, m.name, "module", "not a mapping: skipped")
		return
	}
	o := newObj(val)
	m.proberLine = key.Line
	if p := o.get("prober"); p != nil {
		m.prober, m.proberLine = p.Value, p.Line
	}
	if t := o.get("timeout"); t != nil {
		m.timeout, m.timeoutLine = t.Value, t.Line
	}
	switch m.prober {
	case "http", "tcp", "dns", "icmp", "grpc":
		m.ok = true
		sec := o.get(m.prober)
		if sec != nil && sec.Kind != yaml.MappingNode {
			c.note(sec.Line, m.name, m.prober, "not a mapping: ignored")
			sec = nil
		}
		so := newObj(sec)
		switch m.prober {
		case "http":
			m.http = c.readHTTP(m, so)
		case "tcp":
			m.tcp = c.readTCP(m, so)
		case "dns":
			m.dns = c.readDNS(m, so)
		case "icmp":
			m.icmp = c.readICMP(m, so)
		case "grpc":
			m.grpc = c.readGRPC(m, so)
		}
		for _, k := range so.rest() {
			c.note(k.Line, m.name, m.prober+"."+k.Value, "no equivalent in probe's plugins yet: not expressed")
		}
	case "unix":
		c.note(m.proberLine, m.name, "prober", fmt.Sprintf("prober %q is not expressible: probe has no %s plugin yet; no pipeline written", m.prober, m.prober))
		o.get(m.prober) // reported with the module
	case "":
		c.note(key.Line, m.name, "prober", "no prober: skipped")
	default:
		c.note(key.Line, m.name, "prober", fmt.Sprintf("unknown prober %q: skipped", m.prober))
	}
	for _, k := range o.rest() {
		c.note(k.Line, m.name, k.Value, "not a module option blackbox knows, or one for another prober: ignored")
	}
}

// name returns a block name for want, unique among kind's.
func (c *converter) name(kind, want string) string {
	want = ident(want)
	name := want
	for i := 2; c.names[kind+"."+name]; i++ {
		name = fmt.Sprintf("%s_%d", want, i)
	}
	c.names[kind+"."+name] = true
	return name
}

var notIdent = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// ident makes s an HCL identifier.
func ident(s string) string {
	s = notIdent.ReplaceAllString(s, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') || s[0] == '-' {
		s = "m_" + s
	}
	return s
}

// resolver returns the system resolver for the module's address family
// settings (preferred_ip_protocol, ip_protocol_fallback).
func (c *converter) resolver(m *module, o *obj, prefix string) string {
	network := "ip"
	pref, fallback := o.get("preferred_ip_protocol"), o.get("ip_protocol_fallback")
	fb := fallback == nil || fallback.Value == "true"
	if pref != nil && !fb {
		switch pref.Value {
		case "ip4", "ipv4":
			network = "ip4"
		case "ip6", "ipv6":
			network = "ip6"
		default:
			c.note(pref.Line, m.name, prefix+"preferred_ip_protocol", fmt.Sprintf("unknown value %q: both families asked for", pref.Value))
		}
	} else if pref != nil {
		c.note(pref.Line, m.name, prefix+"preferred_ip_protocol", "with ip_protocol_fallback, probe asks for both families "+
			"and probes the first address the system resolver gives (address_policy first), not always "+pref.Value)
	}
	name := "system"
	if network != "ip" {
		name += "_" + network
	}
	if !c.resolvers[name] {
		c.resolvers[name] = true
		b := hclwrite.NewBlock("resolver", []string{name})
		b.Body().SetAttributeValue("plugin", cty.StringVal("dns-system"))
		if network != "ip" {
			b.Body().SetAttributeValue("network", cty.StringVal(network))
		}
		c.blocks = append([]*hclwrite.Block{b}, c.blocks...)
	}
	return name
}

// pipeline writes a pipeline block that dials with dial-tcp.
func (c *converter) pipeline(m *module, kind, name, resolver string, handshakes []string) string {
	return c.pipelineWith(m, kind, name, resolver, "tcp", handshakes)
}

// pipelineWith writes a pipeline block that dials with dialer.
func (c *converter) pipelineWith(m *module, kind, name, resolver, dialer string, handshakes []string) string {
	b := hclwrite.NewBlock("pipeline", []string{name})
	b.Body().SetAttributeRaw("resolvers", hclwrite.TokensForTuple([]hclwrite.Tokens{ref("resolver", resolver)}))
	b.Body().SetAttributeRaw("dialer", ref("dialer", dialer))
	if len(handshakes) > 0 {
		var hs []hclwrite.Tokens
		for _, h := range handshakes {
			hs = append(hs, ref("handshake", h))
		}
		b.Body().SetAttributeRaw("handshakes", hclwrite.TokensForTuple(hs))
	}
	c.pipes = append(c.pipes, b)
	c.pipelineOf[m.name+" "+kind] = name
	c.res.Pipelines = append(c.res.Pipelines, name)
	c.res.Modules[m.name] = append(c.res.Modules[m.name], name)
	return name
}

func ref(kind, name string) hclwrite.Tokens {
	return hclwrite.TokensForTraversal(hcl.Traversal{hcl.TraverseRoot{Name: kind}, hcl.TraverseAttr{Name: name}})
}

// secret declares a sensitive variable for a module's secret and returns
// the reference to it.
func (c *converter) secret(m *module, what string) hclwrite.Tokens {
	name := c.name("variable", m.name+"_"+what)
	b := hclwrite.NewBlock("variable", []string{name})
	b.Body().SetAttributeValue("description", cty.StringVal(fmt.Sprintf("%s of blackbox module %s: set PROBE_VAR_%s", what, m.name, name)))
	b.Body().SetAttributeValue("sensitive", cty.True)
	b.Body().SetAttributeValue("type", cty.NilVal)
	b.Body().SetAttributeRaw("type", hclwrite.TokensForIdentifier("string"))
	c.vars = append(c.vars, b)
	c.res.Secrets = append(c.res.Secrets, name)
	return hclwrite.TokensForTraversal(hcl.Traversal{hcl.TraverseRoot{Name: "var"}, hcl.TraverseAttr{Name: name}})
}

// hostPort splits a blackbox target (host, host:port, [v6]:port) with
// defaultPort when it has none.
func hostPort(target string, defaultPort int) (string, int, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(target, "[]"), defaultPort, nil
		}
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q", port)
	}
	return host, n, nil
}

// target writes the target block of t, and the pipeline it needs.
func (c *converter) target(t Target) {
	m := c.modules[t.Module]
	if m == nil || !m.ok {
		c.noteTarget(t, fmt.Sprintf("module %q is not expressed (see its notes): no target written", t.Module))
		return
	}
	var host, pipeline string
	var port int
	switch m.prober {
	case "http":
		raw := t.Target
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			c.noteTarget(t, fmt.Sprintf("target %q is not a URL: no target written", t.Target))
			return
		}
		def := 80
		if u.Scheme == "https" {
			def = 443
		}
		if host, port, err = hostPort(u.Host, def); err != nil {
			c.noteTarget(t, fmt.Sprintf("target %q: %v", t.Target, err))
			return
		}
		path := u.RequestURI()
		pipeline = c.httpPipeline(m, u.Scheme, path)
	case "tcp", "grpc":
		var err error
		if host, port, err = hostPort(t.Target, 0); err != nil || port == 0 {
			c.noteTarget(t, fmt.Sprintf("target %q: a %s target is HOST:PORT", t.Target, m.prober))
			return
		}
		if m.prober == "tcp" {
			pipeline = c.tcpPipeline(m)
		} else {
			pipeline = c.grpcPipeline(m)
		}
	case "icmp":
		// A host; every target has a port, which icmp does not use.
		host, port = strings.Trim(t.Target, "[]"), 1
		if strings.Contains(host, "/") || strings.Contains(host, " ") {
			c.noteTarget(t, fmt.Sprintf("target %q: an icmp target is a host", t.Target))
			return
		}
		pipeline = c.icmpPipeline(m)
	case "dns":
		def := 53
		if m.dns != nil && m.dns.tls {
			def = 853
		}
		var err error
		if host, port, err = hostPort(t.Target, def); err != nil {
			c.noteTarget(t, fmt.Sprintf("target %q: %v", t.Target, err))
			return
		}
		pipeline = c.dnsPipeline(m)
	}
	if pipeline == "" {
		return
	}
	// Named as the scrape names it, so that /probe?target= finds it; the
	// module tells apart a target that two jobs probe.
	name := t.Target
	for i := 1; c.names["target."+name]; i++ {
		name = fmt.Sprintf("%s (%s)", t.Target, t.Module)
		if i > 1 {
			name = fmt.Sprintf("%s (%s %d)", t.Target, t.Module, i)
		}
	}
	c.names["target."+name] = true
	b := hclwrite.NewBlock("target", []string{name})
	b.Body().AppendUnstructuredTokens(comment(fmt.Sprintf("job %s, module %s, target %s", t.Job, t.Module, t.Target)))
	b.Body().SetAttributeValue("host", cty.StringVal(host))
	b.Body().SetAttributeValue("port", cty.NumberIntVal(int64(port)))
	b.Body().SetAttributeRaw("pipeline", ref("pipeline", pipeline))
	if m.timeout != "" {
		b.Body().SetAttributeValue("timeout", cty.StringVal(m.timeout))
	}
	c.targets = append(c.targets, b)
	m.targets++
}

func (c *converter) noteTarget(t Target, reason string) {
	c.notes = append(c.notes, Note{File: t.File, Line: t.Line, Option: "job " + t.Job, Reason: reason})
}
