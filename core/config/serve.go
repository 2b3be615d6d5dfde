package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// Serve is a file's serve block: what `probe serve` lets a scrape ask for
// beyond the file's own targets.
type Serve struct {
	// Adhoc is the allow-list of the ad-hoc form,
	// /probe?target=HOST:PORT&pipeline=NAME. Empty (no serve block, or no
	// adhoc block in it) refuses every host that is not one of the file's
	// targets.
	Adhoc Adhoc
	// BlackboxNames adds blackbox_exporter's metric families to /probe's
	// answers, beside probe's own (blackbox_names = true). Default false.
	BlackboxNames bool
}

// Adhoc is the allow-list of hosts and ports that a scrape may name for a
// pipeline of the file: serve { adhoc { allow = [...] } }.
type Adhoc struct {
	// Allow are the entries as written.
	Allow []string
	rules []adhocRule
}

// adhocRule is one entry of an allow-list: hosts and a port (0: any).
type adhocRule struct {
	hosts engine.Route
	port  uint16
}

// Allows reports whether the allow-list lets a scrape probe host:port. An
// IP literal is allowed by a prefix or an address entry, a name by a glob
// entry: a name is never resolved to be checked, so that a refused target
// costs no query either.
func (a *Adhoc) Allows(host string, port uint16) bool {
	for _, r := range a.rules {
		if (r.port == 0 || r.port == port) && r.hosts.Matches(host) {
			return true
		}
	}
	return false
}

// parseAdhocRule reads an allow-list entry: HOST or HOST:PORT, where HOST
// is a CIDR prefix ("10.0.0.0/8"), an address ("127.0.0.1", "::1",
// bracketed with a port: "[::1]:9090") or a name glob ("*.internal", where
// * matches dots too), and PORT a number or "*"; no port means any.
func parseAdhocRule(entry string) (adhocRule, error) {
	host, port := entry, "*"
	if _, err := netip.ParseAddr(entry); err != nil {
		if _, err := netip.ParsePrefix(entry); err != nil {
			if h, p, err := net.SplitHostPort(entry); err == nil {
				host, port = h, p
			}
		}
	}
	var r adhocRule
	if port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return r, fmt.Errorf("%q: the port must be a number from 1 to 65535 or *, got %q", entry, port)
		}
		r.port = uint16(n)
	}
	if host == "" {
		return r, fmt.Errorf("%q: no host; to allow any IPv4 address, write \"0.0.0.0/0\"", entry)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()).String()
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{}, []string{host})
	if err != nil {
		_, why, _ := strings.Cut(err.Error(), ": ") // after NewRoute's own `match "HOST"`
		return r, fmt.Errorf("%q: %s", entry, why)
	}
	r.hosts = route
	return r, nil
}

var (
	serveSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "blackbox_names"}},
		Blocks: []hcl.BlockHeaderSchema{{Type: "adhoc"}}}
	adhocSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "allow", Required: true}}}
)

// serve decodes the serve block, of which there is at most one, with at
// most one adhoc block.
func (d *decoder) serve(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			d.diags = append(d.diags, duplicate("serve block", "serve", b.DefRange, blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(serveSchema)
		d.diags = append(d.diags, diags...)
		if a, ok := content.Attributes["blackbox_names"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.Bool); ok {
				d.file.Serve.BlackboxNames = v.True()
			}
		}
		for j, ab := range content.Blocks {
			if j > 0 {
				d.diags = append(d.diags, duplicate("adhoc block", "adhoc", ab.DefRange, content.Blocks[0].DefRange))
				continue
			}
			d.adhoc(ab)
		}
	}
}

func (d *decoder) adhoc(b *hcl.Block) {
	content, diags := b.Body.Content(adhocSchema)
	d.diags = append(d.diags, diags...)
	a, ok := content.Attributes["allow"]
	if !ok {
		return
	}
	v, ok := d.eval(a, d.ctx, cty.List(cty.String))
	if !ok {
		return
	}
	adhoc := &d.file.Serve.Adhoc
	for i, e := range v.AsValueSlice() {
		r, err := parseAdhocRule(e.AsString())
		if err != nil {
			rng := a.Expr.Range() // the entry's own, when the list is written out
			if list, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(list.Exprs) == v.LengthInt() {
				rng = list.Exprs[i].Range()
			}
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid ad-hoc allow entry", Subject: rng.Ptr(), Detail: err.Error() + ". An entry is HOST or HOST:PORT, where HOST is " +
				`a CIDR prefix ("10.0.0.0/8"), an address ("127.0.0.1", "[::1]:9090") or a name glob ("*.internal"), and PORT a number or *.`})
			continue
		}
		adhoc.Allow = append(adhoc.Allow, e.AsString())
		adhoc.rules = append(adhoc.rules, r)
	}
}
