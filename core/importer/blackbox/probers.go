package blackbox

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/miekg/dns"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// tlsSpec is a tls_config as the tls plugin takes it.
type tlsSpec struct {
	attrs []attr
}

// attr is an attribute to write, in order.
type attr struct {
	name string
	val  cty.Value
}

// readTLS reads a tls_config mapping (prefix is its path, for notes).
func (c *converter) readTLS(m *module, o *obj, prefix string) tlsSpec {
	var t tlsSpec
	for _, key := range []string{"server_name", "ca_file"} {
		if v := o.get(key); v != nil {
			t.attrs = append(t.attrs, attr{key, cty.StringVal(v.Value)})
		}
	}
	if v := o.get("insecure_skip_verify"); v != nil {
		t.attrs = append(t.attrs, attr{"insecure_skip_verify", cty.BoolVal(v.Value == "true")})
	}
	for _, key := range []string{"min_version", "max_version"} {
		v := o.get(key)
		if v == nil {
			continue
		}
		version, ok := map[string]string{"TLS10": "1.0", "TLS11": "1.1", "TLS12": "1.2", "TLS13": "1.3"}[v.Value]
		if !ok {
			c.note(v.Line, m.name, prefix+key, fmt.Sprintf("unknown TLS version %q: not expressed", v.Value))
			continue
		}
		t.attrs = append(t.attrs, attr{key, cty.StringVal(version)})
	}
	for _, key := range []string{"cert_file", "key_file", "cert", "key"} {
		if v := o.get(key); v != nil {
			c.note(v.Line, m.name, prefix+key, "not expressible: the tls plugin presents no client certificate yet")
		}
	}
	for _, k := range o.rest() {
		c.note(k.Line, m.name, prefix+k.Value, "no equivalent in the tls plugin: not expressed")
	}
	return t
}

// tlsHandshake writes the tls handshake of spec for m once and returns its
// name.
func (c *converter) tlsHandshake(m *module, spec tlsSpec, alpn []string) string {
	key := "tls." + m.name
	if name, ok := c.pipelineOf[key]; ok {
		return name
	}
	name := c.name("handshake", m.name+"_tls")
	b := hclwrite.NewBlock("handshake", []string{name})
	b.Body().SetAttributeValue("plugin", cty.StringVal("tls"))
	if len(alpn) > 0 {
		b.Body().SetAttributeValue("alpn", strList(alpn))
	}
	for _, a := range spec.attrs {
		b.Body().SetAttributeValue(a.name, a.val)
	}
	c.blocks = append(c.blocks, b)
	c.pipelineOf[key] = name
	return name
}

func strList(ss []string) cty.Value {
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

// httpSpec is an http module as the http and tls plugins take it.
type httpSpec struct {
	resolver   string
	method     string
	host       string
	headers    []attr
	auth       hclwrite.Tokens // the Authorization header's expression; nil for none
	status     []string
	body       string
	follow     bool
	ssl        string // "only" (fail_if_not_ssl), "never" (fail_if_ssl) or ""
	alpn       []string
	tls        tlsSpec
	handshakes map[string]string // the http handshake's name by path
}

func (c *converter) readHTTP(m *module, o *obj) *httpSpec {
	h := &httpSpec{follow: true, status: []string{"2xx"}, handshakes: map[string]string{}}
	h.resolver = c.resolver(m, o, "http.")
	if v := o.get("method"); v != nil && v.Value != "GET" {
		h.method = v.Value
	}
	if v := o.get("headers"); v != nil {
		for i := 0; i+1 < len(v.Content); i += 2 {
			name, val := v.Content[i].Value, v.Content[i+1].Value
			if strings.EqualFold(name, "Host") {
				h.host = val
				continue
			}
			h.headers = append(h.headers, attr{name, cty.StringVal(val)})
		}
	}
	if v := o.get("valid_status_codes"); v != nil && len(strs(v)) > 0 {
		h.status = strs(v)
	}
	if v := o.get("no_follow_redirects"); v != nil {
		h.follow = v.Value != "true"
	}
	if v := o.get("fail_if_ssl"); v != nil && v.Value == "true" {
		h.ssl = "never"
	}
	if v := o.get("fail_if_not_ssl"); v != nil && v.Value == "true" {
		h.ssl = "only"
	}
	if v := o.get("fail_if_body_not_matches_regexp"); v != nil {
		res := strs(v)
		switch {
		case len(res) == 1:
			h.body = res[0]
		case len(res) > 1:
			c.note(v.Line, m.name, "http.fail_if_body_not_matches_regexp", fmt.Sprintf(
				"only the first of %d regexps is checked (expect_body takes one): %q", len(res), res[0]))
			h.body = res[0]
		}
	}
	// blackbox offers HTTP/2 over TLS unless enable_http2 is false.
	h.alpn = []string{"h2", "http/1.1"}
	if v := o.get("enable_http2"); v != nil && v.Value == "false" {
		h.alpn = []string{"http/1.1"}
	}
	if v := o.get("valid_http_versions"); v != nil {
		versions := strs(v)
		if len(versions) == 1 && versions[0] == "HTTP/2.0" {
			h.alpn = []string{"h2"}
			c.note(v.Line, m.name, "http.valid_http_versions", "over TLS, offered as ALPN h2 only: a server without h2 "+
				"fails the tls phase (tls.protocol) rather than the HTTP version check; plain HTTP is not checked")
		} else if len(versions) > 0 {
			c.note(v.Line, m.name, "http.valid_http_versions", "not expressible: the http plugin checks no HTTP version "+
				"(it reports it as the attribute version)")
		}
	}
	if v := o.get("tls_config"); v != nil {
		h.tls = c.readTLS(m, newObj(v), "http.tls_config.")
	}
	if v := o.get("basic_auth"); v != nil {
		ba := newObj(v)
		user := ba.get("username")
		if pf := ba.get("password_file"); pf != nil {
			c.note(pf.Line, m.name, "http.basic_auth.password_file", "not expressible: a pipeline file reads no file; "+
				"the password became a sensitive variable to set instead")
		}
		ba.get("password") // its value stays out of the file
		u := ""
		if user != nil {
			u = user.Value
		}
		pass := c.secret(m, "password")
		h.auth = hclwrite.TokensForFunctionCall("format", hclwrite.TokensForValue(cty.StringVal("Basic %s")),
			hclwrite.TokensForFunctionCall("base64encode", hclwrite.TokensForFunctionCall("format",
				hclwrite.TokensForValue(cty.StringVal("%s:%s")), hclwrite.TokensForValue(cty.StringVal(u)), pass)))
		for _, k := range ba.rest() {
			c.note(k.Line, m.name, "http.basic_auth."+k.Value, "not expressed")
		}
	}
	if v := o.get("bearer_token"); v != nil {
		h.auth = hclwrite.TokensForFunctionCall("format", hclwrite.TokensForValue(cty.StringVal("Bearer %s")), c.secret(m, "bearer_token"))
	}
	if v := o.get("bearer_token_file"); v != nil {
		c.note(v.Line, m.name, "http.bearer_token_file", "not expressible: a pipeline file reads no file; "+
			"write bearer_token's value into a sensitive variable instead")
	}
	reasons := map[string]string{
		"body":                              "not expressible: the http plugin sends no request body",
		"body_file":                         "not expressible: the http plugin sends no request body",
		"fail_if_body_matches_regexp":       "not expressible: expect_body checks that the body matches, not that it does not",
		"fail_if_header_matches":            "not expressible: the http plugin checks no response header",
		"fail_if_header_not_matches":        "not expressible: the http plugin checks no response header",
		"compression":                       "not expressible: the http plugin sends no Accept-Encoding and decompresses nothing",
		"proxy_url":                         "not expressible: probe has no HTTP proxy dialer yet",
		"follow_redirects":                  "renamed no_follow_redirects in blackbox; not expressed",
		"oauth2":                            "not expressible: no OAuth2 in the http plugin",
		"authorization":                     "not expressible here: use headers, or bearer_token",
		"skip_resolve_phase_with_proxy":     "not expressible: probe has no HTTP proxy dialer yet",
		"ip_protocol_fallback":              "", // read with preferred_ip_protocol
		"http_client_config":                "not expressed",
		"enable_http3":                      "not expressible: probe has no HTTP/3 plugin yet",
		"fail_if_body_json_matches_cel":     "not expressible: no CEL in the http plugin",
		"fail_if_body_json_not_matches_cel": "not expressible: no CEL in the http plugin",
	}
	for k, why := range reasons {
		if v := o.get(k); v != nil && why != "" {
			c.note(v.Line, m.name, "http."+k, why)
		}
	}
	return h
}

// httpPipeline returns the pipeline of m for scheme and path, writing it
// (and its handshakes) the first time.
func (c *converter) httpPipeline(m *module, scheme, path string) string {
	h := m.http
	tls := scheme == "https"
	switch {
	case tls && h.ssl == "never", !tls && h.ssl == "only":
		// blackbox fails such a probe; so does the pipeline of the other
		// kind: keep the scheme and let fail_if_* be told apart by notes.
		c.note(m.line, m.name, "http.fail_if_ssl/fail_if_not_ssl", fmt.Sprintf("a %s target of a module that forbids it: "+
			"blackbox fails it after the request; probe probes it as %s", scheme, scheme))
	}
	kind := scheme + " " + path
	if name, ok := c.pipelineOf[m.name+" "+kind]; ok {
		return name
	}
	pname := m.name
	if !tls {
		pname += "_http"
	}
	if path != "/" {
		pname += "_" + strings.Trim(notIdent.ReplaceAllString(path, "_"), "_")
	}
	pname = c.name("pipeline", pname)
	var hs []string
	if tls {
		hs = append(hs, c.tlsHandshake(m, h.tls, h.alpn))
	}
	hname, ok := h.handshakes[path]
	if !ok {
		hname = c.name("handshake", pname)
		h.handshakes[path] = hname
		b := hclwrite.NewBlock("handshake", []string{hname})
		body := b.Body()
		body.SetAttributeValue("plugin", cty.StringVal("http"))
		if h.method != "" {
			body.SetAttributeValue("method", cty.StringVal(h.method))
		}
		if path != "/" {
			body.SetAttributeValue("path", cty.StringVal(path))
		}
		if h.host != "" {
			body.SetAttributeValue("host", cty.StringVal(h.host))
		}
		if len(h.headers) > 0 || h.auth != nil {
			var items []hclwrite.ObjectAttrTokens
			for _, a := range h.headers {
				items = append(items, hclwrite.ObjectAttrTokens{Name: hclwrite.TokensForValue(cty.StringVal(a.name)), Value: hclwrite.TokensForValue(a.val)})
			}
			if h.auth != nil {
				items = append(items, hclwrite.ObjectAttrTokens{Name: hclwrite.TokensForValue(cty.StringVal("Authorization")), Value: h.auth})
			}
			body.SetAttributeRaw("headers", hclwrite.TokensForObject(items))
		}
		body.SetAttributeValue("expect_status", strList(h.status))
		if h.body != "" {
			body.SetAttributeValue("expect_body", cty.StringVal(h.body))
		}
		if h.follow {
			body.SetAttributeValue("follow_redirects", cty.True)
		}
		c.blocks = append(c.blocks, b)
	}
	hs = append(hs, hname)
	return c.pipeline(m, kind, pname, h.resolver, hs)
}

// tcpSpec is a tcp module.
type tcpSpec struct {
	resolver string
	tls      bool
	tlsSpec  tlsSpec
	ssh      bool // query_response is SSH's version exchange: an ssh handshake
}

func (c *converter) readTCP(m *module, o *obj) *tcpSpec {
	t := &tcpSpec{resolver: c.resolver(m, o, "tcp.")}
	if v := o.get("tls"); v != nil {
		t.tls = v.Value == "true"
	}
	if v := o.get("tls_config"); v != nil {
		t.tlsSpec = c.readTLS(m, newObj(v), "tcp.tls_config.")
	}
	if v := o.get("query_response"); v != nil {
		switch {
		case !t.tls && sshExchange(v):
			t.ssh = true
			c.note(v.Line, m.name, "tcp.query_response", "expressed as an ssh handshake: it reads the server's version "+
				"line (SSH-2.0), sends its own and completes the key exchange, which checks more than the regexp")
		default:
			what := "a dialogue of sends and expects is no built-in handshake's (udp-payload sends over UDP, not TCP)"
			if v.Kind == yaml.SequenceNode && len(v.Content) == 1 && len(v.Content[0].Content) == 2 && v.Content[0].Content[0].Value == "expect" {
				what = "a greeting checked against one regexp is what the banner example plugin does " +
					"(examples/plugins/banner, not built in: build it and add its handshake by hand)"
			}
			c.note(v.Line, m.name, "tcp.query_response", "not expressible with the built-in plugins: "+what+"; the pipeline connects"+
				map[bool]string{true: " and shakes hands over TLS", false: ""}[t.tls]+" only")
		}
	}
	if v := o.get("source_ip_address"); v != nil {
		c.note(v.Line, m.name, "tcp.source_ip_address", "not expressed: set the dialer's source for this pipeline by hand (dial-tcp source)")
	}
	return t
}

// sshExpect matches the regexp of a query_response step that expects
// SSH's version line, sshSend the line a step sends as the client's.
var (
	sshExpect = regexp.MustCompile(`^\^SSH-(2\\?\.0-?)?$`)
	sshSend   = regexp.MustCompile(`^SSH-2\.0-[!-~]+$`)
)

// sshExchange reports whether the query_response steps qr are SSH's
// version exchange: expect the server's version line, then at most send
// the client's.
func sshExchange(qr *yaml.Node) bool {
	if qr.Kind != yaml.SequenceNode || len(qr.Content) == 0 || len(qr.Content) > 2 {
		return false
	}
	for i, step := range qr.Content {
		if step.Kind != yaml.MappingNode || len(step.Content) != 2 {
			return false
		}
		key, val := step.Content[0].Value, strings.TrimRight(step.Content[1].Value, "\r\n")
		if i == 0 && (key != "expect" || !sshExpect.MatchString(val)) || i == 1 && (key != "send" || !sshSend.MatchString(val)) {
			return false
		}
	}
	return true
}

func (c *converter) tcpPipeline(m *module) string {
	if name, ok := c.pipelineOf[m.name+" tcp"]; ok {
		return name
	}
	var hs []string
	if m.tcp.tls {
		hs = append(hs, c.tlsHandshake(m, m.tcp.tlsSpec, nil))
	}
	if m.tcp.ssh {
		name := c.name("handshake", m.name+"_ssh")
		b := hclwrite.NewBlock("handshake", []string{name})
		b.Body().SetAttributeValue("plugin", cty.StringVal("ssh"))
		c.blocks = append(c.blocks, b)
		hs = append(hs, name)
	}
	return c.pipeline(m, "tcp", c.name("pipeline", m.name), m.tcp.resolver, hs)
}

// icmpSpec is an icmp module: the icmp dialer's attributes.
type icmpSpec struct {
	resolver string
	attrs    []attr
}

func (c *converter) readICMP(m *module, o *obj) *icmpSpec {
	i := &icmpSpec{resolver: c.resolver(m, o, "icmp.")}
	if v := o.get("payload_size"); v != nil {
		n, err := strconv.Atoi(v.Value)
		if err != nil || n < 0 || n > 65000 {
			c.note(v.Line, m.name, "icmp.payload_size", fmt.Sprintf("%q is not a size from 0 to 65000 bytes: not expressed", v.Value))
		} else {
			i.attrs = append(i.attrs, attr{"size", cty.NumberIntVal(int64(n))})
		}
	}
	if v := o.get("source_ip_address"); v != nil {
		i.attrs = append(i.attrs, attr{"source", cty.StringVal(v.Value)})
	}
	if v := o.get("ttl"); v != nil {
		c.note(v.Line, m.name, "icmp.ttl", "not expressible: the icmp dialer sends with the system's TTL")
	}
	if v := o.get("dont_fragment"); v != nil && v.Value == "true" {
		c.note(v.Line, m.name, "icmp.dont_fragment", "not expressible: the icmp dialer does not set Don't Fragment")
	}
	return i
}

// icmpPipeline returns the pipeline of an icmp module: its resolver and
// an icmp dialer of one echo request, as blackbox sends, and no handshake.
func (c *converter) icmpPipeline(m *module) string {
	if name, ok := c.pipelineOf[m.name+" icmp"]; ok {
		return name
	}
	dialer := c.name("dialer", m.name+"_icmp")
	b := hclwrite.NewBlock("dialer", []string{dialer})
	b.Body().SetAttributeValue("plugin", cty.StringVal("icmp"))
	for _, a := range m.icmp.attrs {
		b.Body().SetAttributeValue(a.name, a.val)
	}
	c.blocks = append(c.blocks, b)
	return c.pipelineWith(m, "icmp", c.name("pipeline", m.name), m.icmp.resolver, dialer, nil)
}

// grpcSpec is a grpc module.
type grpcSpec struct {
	resolver string
	tls      bool
	tlsSpec  tlsSpec
	service  string
}

func (c *converter) readGRPC(m *module, o *obj) *grpcSpec {
	g := &grpcSpec{resolver: c.resolver(m, o, "grpc.")}
	if v := o.get("tls"); v != nil {
		g.tls = v.Value == "true"
	}
	if v := o.get("tls_config"); v != nil {
		g.tlsSpec = c.readTLS(m, newObj(v), "grpc.tls_config.")
	}
	if v := o.get("service"); v != nil {
		g.service = v.Value
	}
	return g
}

// grpcPipeline returns the pipeline of a grpc module: connect, TLS
// offering h2 when the module says tls, and a grpc-health Check of its
// service.
func (c *converter) grpcPipeline(m *module) string {
	if name, ok := c.pipelineOf[m.name+" grpc"]; ok {
		return name
	}
	var hs []string
	if m.grpc.tls {
		hs = append(hs, c.tlsHandshake(m, m.grpc.tlsSpec, []string{"h2"}))
	}
	name := c.name("handshake", m.name+"_grpc")
	b := hclwrite.NewBlock("handshake", []string{name})
	b.Body().SetAttributeValue("plugin", cty.StringVal("grpc-health"))
	if m.grpc.service != "" {
		b.Body().SetAttributeValue("service", cty.StringVal(m.grpc.service))
	}
	c.blocks = append(c.blocks, b)
	hs = append(hs, name)
	return c.pipeline(m, "grpc", c.name("pipeline", m.name), m.grpc.resolver, hs)
}

// dnsSpec is a dns module: the resolver of the DNS server's name and the
// dns-miekg dialer's attributes.
type dnsSpec struct {
	resolver string
	tls      bool // DNS over TLS: the target's port defaults to 853
	attrs    []attr
}

// rrChecks are the keys of blackbox's validate_*_rrs, which the dns-miekg
// dialer takes by the same names.
var rrChecks = []string{"fail_if_matches_regexp", "fail_if_not_matches_regexp", "fail_if_all_match_regexp", "fail_if_none_matches_regexp"}

// readDNS reads a dns module. The target is the DNS server, as in
// blackbox: its name goes through the module's resolver, and the
// dns-miekg dialer asks it the question. nil when the module has no
// query_name.
func (c *converter) readDNS(m *module, o *obj) *dnsSpec {
	d := &dnsSpec{resolver: c.resolver(m, o, "dns.")}
	v := o.get("query_name")
	if v == nil {
		c.note(m.proberLine, m.name, "dns.query_name", "missing: blackbox requires it; no pipeline written")
		return nil
	}
	d.attrs = append(d.attrs, attr{"query_name", cty.StringVal(v.Value)})
	qtype := "ANY" // blackbox's default
	if v := o.get("query_type"); v != nil {
		qtype = strings.ToUpper(v.Value)
		if t, ok := dns.StringToType[qtype]; !ok || t == dns.TypeNone {
			c.note(v.Line, m.name, "dns.query_type", fmt.Sprintf("unknown record type %q (blackbox fails every probe of it): no pipeline written", v.Value))
			return nil
		}
	}
	d.attrs = append(d.attrs, attr{"query_type", cty.StringVal(qtype)})
	if v := o.get("query_class"); v != nil && !strings.EqualFold(v.Value, "IN") {
		c.note(v.Line, m.name, "dns.query_class", fmt.Sprintf("not expressible: the dns-miekg dialer asks in class IN, not %s", v.Value))
	}
	transport := "udp"
	if v := o.get("transport_protocol"); v != nil {
		switch v.Value {
		case "udp", "tcp":
			transport = v.Value
		default:
			c.note(v.Line, m.name, "dns.transport_protocol", fmt.Sprintf("unknown %q: udp", v.Value))
		}
	}
	if v := o.get("dns_over_tls"); v != nil && v.Value == "true" {
		transport = "tls"
	}
	d.tls = transport == "tls"
	d.attrs = append(d.attrs, attr{"transport", cty.StringVal(transport)})
	if v := o.get("tls_config"); v != nil {
		to := newObj(v)
		for _, key := range []string{"server_name", "ca_file"} {
			v := to.get(key)
			switch {
			case v == nil:
			case transport == "tls":
				d.attrs = append(d.attrs, attr{key, cty.StringVal(v.Value)})
			default:
				c.note(v.Line, m.name, "dns.tls_config."+key, "used with dns_over_tls only, as blackbox does: ignored")
			}
		}
		for _, k := range to.rest() {
			c.note(k.Line, m.name, "dns.tls_config."+k.Value, "no equivalent in the dns-miekg dialer: not expressed")
		}
	}
	if v := o.get("recursion_desired"); v != nil && v.Value == "false" {
		d.attrs = append(d.attrs, attr{"recursion_desired", cty.False})
	}
	// blackbox asks without EDNS0: no OPT record, so that the reply's
	// additional section counts the same (probe_dns_additional_rrs).
	d.attrs = append(d.attrs, attr{"edns_buffer_size", cty.NumberIntVal(0)})
	if v := o.get("valid_rcodes"); v != nil {
		var codes []string
		for _, code := range strs(v) {
			if _, ok := dns.StringToRcode[strings.ToUpper(code)]; !ok {
				c.note(v.Line, m.name, "dns.valid_rcodes", fmt.Sprintf("unknown rcode %q (blackbox fails every probe of the module): left out", code))
				continue
			}
			codes = append(codes, strings.ToUpper(code))
		}
		if len(codes) > 0 {
			d.attrs = append(d.attrs, attr{"valid_rcodes", strList(codes)})
		}
	}
	for _, k := range []string{"validate_answer_rrs", "validate_authority_rrs", "validate_additional_rrs"} {
		v := o.get(k)
		if v == nil {
			continue
		}
		if v.Kind != yaml.MappingNode {
			c.note(v.Line, m.name, "dns."+k, "not a mapping: ignored")
			continue
		}
		vo := newObj(v)
		checks := map[string]cty.Value{}
		for _, key := range rrChecks {
			if re := strs(vo.get(key)); len(re) > 0 {
				checks[key] = strList(re)
			}
		}
		for _, rk := range vo.rest() {
			c.note(rk.Line, m.name, "dns."+k+"."+rk.Value, "not a check blackbox knows: ignored")
		}
		if len(checks) > 0 {
			d.attrs = append(d.attrs, attr{k, cty.MapVal(checks)})
		}
	}
	if v := o.get("source_ip_address"); v != nil {
		c.note(v.Line, m.name, "dns.source_ip_address", "not expressible: the dns-miekg dialer has no source address")
	}
	return d
}

// dnsPipeline returns the pipeline of a dns module: its resolver (of the
// DNS server's name) and a dns-miekg dialer asking the question, with no
// handshake; the exchange is the probe.
func (c *converter) dnsPipeline(m *module) string {
	if m.dns == nil {
		return ""
	}
	if name, ok := c.pipelineOf[m.name+" dns"]; ok {
		return name
	}
	dialer := c.name("dialer", m.name+"_dns")
	b := hclwrite.NewBlock("dialer", []string{dialer})
	b.Body().SetAttributeValue("plugin", cty.StringVal("dns-miekg"))
	for _, a := range m.dns.attrs {
		b.Body().SetAttributeValue(a.name, a.val)
	}
	c.blocks = append(c.blocks, b)
	return c.pipelineWith(m, "dns", c.name("pipeline", m.name), m.dns.resolver, dialer, nil)
}
