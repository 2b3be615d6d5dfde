package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"go.yaml.in/yaml/v2"
)

// Discovery is what a file's values came from outside it: the target
// lists of file_sd and the SRV records of dns_srv. probe serve loads the
// file again when a list changes, and on its schedule when DNS was asked.
type Discovery struct {
	// Files are the paths file_sd read, in the order read: as given when
	// absolute, else joined to the pipeline file's directory.
	Files []string
	// DNS is true when dns_srv was called.
	DNS bool
}

// Bounds on a target list.
const (
	maxSDFile    = 16 << 20
	maxSDTargets = 100_000
	// srvTimeout bounds one dns_srv lookup.
	srvTimeout = 5 * time.Second
)

// discoveredType is the type of an element of file_sd's and dns_srv's
// lists.
var discoveredType = cty.Object(map[string]cty.Type{
	"address": cty.String, "host": cty.String, "port": cty.Number, "labels": cty.Map(cty.String),
})

// discoveryFuncs returns file_sd and dns_srv, which record what they read
// in rec. file_sd reads a relative path from dir, the pipeline file's
// directory.
func discoveryFuncs(rec *Discovery, dir string) map[string]function.Function {
	return map[string]function.Function{
		"file_sd": function.New(&function.Spec{
			Description: "Reads a Prometheus file_sd target list (JSON, or YAML for .yml and .yaml).",
			Params:      []function.Parameter{{Name: "path", Type: cty.String}},
			Type:        function.StaticReturnType(cty.List(discoveredType)),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				path := args[0].AsString()
				if !filepath.IsAbs(path) {
					path = filepath.Join(dir, path)
				}
				if !slices.Contains(rec.Files, path) {
					rec.Files = append(rec.Files, path)
				}
				return readFileSD(path)
			},
		}),
		"dns_srv": function.New(&function.Spec{
			Description: "Looks up the SRV records of a name, through the system's resolver or the server given.",
			Params:      []function.Parameter{{Name: "name", Type: cty.String}},
			VarParam:    &function.Parameter{Name: "server", Type: cty.String},
			Type:        function.StaticReturnType(cty.List(discoveredType)),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				rec.DNS = true
				if len(args) > 2 {
					return cty.NilVal, function.NewArgErrorf(2, "dns_srv takes a name and at most one server")
				}
				server := ""
				if len(args) == 2 {
					server = args[1].AsString()
				}
				return lookupSRV(args[0].AsString(), server)
			},
		}),
	}
}

// targetGroup is one group of a file_sd list.
type targetGroup struct {
	Targets []string          `json:"targets" yaml:"targets"`
	Labels  map[string]string `json:"labels" yaml:"labels"`
}

// readFileSD reads a file_sd list: every target of every group, with the
// group's labels.
func readFileSD(path string) (cty.Value, error) {
	f, err := os.Open(path)
	if err != nil {
		return cty.NilVal, fmt.Errorf("file_sd: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSDFile+1))
	if err != nil {
		return cty.NilVal, fmt.Errorf("file_sd: read %s: %w", path, err)
	}
	if len(data) > maxSDFile {
		return cty.NilVal, fmt.Errorf("file_sd: %s is over %d bytes", path, maxSDFile)
	}
	var groups []targetGroup
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&groups)
	case ".yml", ".yaml":
		err = yaml.UnmarshalStrict(data, &groups)
	default:
		return cty.NilVal, fmt.Errorf("file_sd: %s: the name must end in .json, .yml or .yaml, as Prometheus's file_sd wants", path)
	}
	if err != nil {
		return cty.NilVal, fmt.Errorf("file_sd: %s: not a list of target groups: %w", path, err)
	}
	var out []cty.Value
	for i, g := range groups {
		labels := map[string]cty.Value{}
		for k, v := range g.Labels {
			labels[k] = cty.StringVal(v)
		}
		for j, t := range g.Targets {
			host, port, err := splitTarget(t)
			if err != nil {
				return cty.NilVal, fmt.Errorf("file_sd: %s: group %d, target %d: %w", path, i, j, err)
			}
			if len(out) == maxSDTargets {
				return cty.NilVal, fmt.Errorf("file_sd: %s lists over %d targets", path, maxSDTargets)
			}
			out = append(out, discovered(host, port, labels))
		}
	}
	if len(out) == 0 {
		return cty.ListValEmpty(discoveredType), nil
	}
	return cty.ListVal(out), nil
}

// splitTarget reads "host:port".
func splitTarget(t string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(t)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q is not host:port", t)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("%q has no valid port", t)
	}
	return host, uint16(port), nil
}

func discovered(host string, port uint16, labels map[string]cty.Value) cty.Value {
	l := cty.MapValEmpty(cty.String)
	if len(labels) > 0 {
		l = cty.MapVal(labels)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"address": cty.StringVal(net.JoinHostPort(host, strconv.Itoa(int(port)))),
		"host":    cty.StringVal(host), "port": cty.NumberIntVal(int64(port)), "labels": l,
	})
}

// lookupSRV looks up the SRV records of name, through the system's
// resolver, or by asking server ("127.0.0.1:5353") over UDP, and returns
// their targets in priority order, weight first within one, without the
// trailing dot, with the priority and weight as labels.
func lookupSRV(name, server string) (cty.Value, error) {
	ctx, cancel := context.WithTimeout(context.Background(), srvTimeout)
	defer cancel()
	var srvs []*net.SRV
	if server == "" {
		var err error
		if _, srvs, err = net.DefaultResolver.LookupSRV(ctx, "", "", name); err != nil {
			return cty.NilVal, fmt.Errorf("dns_srv %s: %w", name, err)
		}
	} else {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
		r, _, err := (&dns.Client{Timeout: srvTimeout}).ExchangeContext(ctx, m, server)
		if err != nil {
			return cty.NilVal, fmt.Errorf("dns_srv %s @%s: %w", name, server, err)
		}
		if r.Rcode != dns.RcodeSuccess {
			return cty.NilVal, fmt.Errorf("dns_srv %s @%s: %s", name, server, dns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Answer {
			if s, ok := rr.(*dns.SRV); ok {
				srvs = append(srvs, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
			}
		}
		slices.SortStableFunc(srvs, func(a, b *net.SRV) int {
			if a.Priority != b.Priority {
				return int(a.Priority) - int(b.Priority)
			}
			return int(b.Weight) - int(a.Weight)
		})
	}
	out := make([]cty.Value, 0, len(srvs))
	for _, s := range srvs {
		if s.Target == "." { // RFC 2782: the service is not available at this name
			continue
		}
		out = append(out, discovered(strings.TrimSuffix(s.Target, "."), s.Port, map[string]cty.Value{
			"priority": cty.StringVal(strconv.Itoa(int(s.Priority))), "weight": cty.StringVal(strconv.Itoa(int(s.Weight))),
		}))
	}
	if len(out) == 0 {
		return cty.NilVal, fmt.Errorf("dns_srv %s: no SRV records", name)
	}
	return cty.ListVal(out), nil
}
