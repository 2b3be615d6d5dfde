package engine

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redacted stands in for a secret in outputs.
const Redacted = "(sensitive)"

// Redactor replaces secrets (the strings of sensitive values) in what a run
// reports, in every form in which they can reach it (Forms). The nil
// Redactor replaces nothing.
type Redactor struct {
	r *strings.Replacer
}

// NewRedactor returns a redactor of secrets and their Forms, or nil when
// there are none.
func NewRedactor(secrets []string) *Redactor {
	if len(secrets) == 0 {
		return nil
	}
	var all []string
	for _, s := range secrets {
		all = append(all, Forms(s)...)
	}
	// Longest first, so that a secret containing another is replaced whole.
	slices.SortFunc(all, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	all = slices.Compact(all)
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Redacted)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// minEncoded is the shortest piece of base64 that Forms gives for a secret
// inside a longer encoded text: shorter ones would match other text too
// often.
const minEncoded = 6

// Forms returns secret and the forms it takes where an output can show it
// encoded: percent-encoded as a URL's path, a path segment and a query
// encode it (an http path's url attribute, a request line a server echoes);
// in base64, standard and URL-safe, alone and inside a longer encoded text
// (a Basic authorization header of "user:secret"), where it can start at any
// of three alignments, of which Forms takes the characters that the secret's
// bytes alone determine (at least minEncoded); and escaped as JSON and Go's
// quoting escape it (a response body, a quoted error). A value derived from a
// secret in the file (upper(var.token)) is a secret of its own: core/config
// collects those.
func Forms(secret string) []string {
	out := []string{secret}
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	query := url.QueryEscape(secret)
	add(url.PathEscape(secret))
	add((&url.URL{Path: secret}).EscapedPath())
	add(query)
	add(strings.ReplaceAll(query, "+", "%20"))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(secret)))
		raw := enc.WithPadding(base64.NoPadding)
		for offset, skip := range []int{0, 2, 3} {
			// offset bytes of whatever precedes the secret, then the
			// secret: the first skip characters depend on those bytes, and
			// the last, unless the secret ends a group of three, on the
			// bytes after it.
			text := raw.EncodeToString(append(make([]byte, offset), secret...))
			end := len(text)
			if (offset+len(secret))%3 != 0 {
				end--
			}
			if end-skip >= minEncoded {
				add(text[skip:end])
			}
		}
	}
	if b, err := json.Marshal(secret); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		s := strings.TrimSuffix(plain.String(), "\n")
		add(s[1 : len(s)-1])
	}
	q := strconv.Quote(secret)
	add(q[1 : len(q)-1])
	q = strconv.QuoteToASCII(secret)
	add(q[1 : len(q)-1])
	return out
}

// Redact returns s with every secret replaced.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Target returns t as outputs may show it: t itself when its name and host
// hold no secret, else a copy with them redacted, which is for showing, not
// for probing.
func (r *Redactor) Target(t *Target) *Target {
	if r == nil {
		return t
	}
	name, host := r.Redact(t.Name), r.Redact(t.Host)
	if name == t.Name && host == t.Host {
		return t
	}
	c := *t
	c.Name, c.Host = name, host
	return &c
}

// attempt redacts an attempt's target name, address, failure message and
// its phases' attributes, in place. An address that is a secret (an IP
// literal a sensitive value gave) is dropped, as if there were none.
func (r *Redactor) attempt(a *Attempt) {
	if r == nil {
		return
	}
	a.Target = r.Redact(a.Target)
	if a.Address.IsValid() {
		if s := a.Address.Addr().String(); r.Redact(s) != s {
			a.Address = netip.AddrPort{}
		}
	}
	if a.Failure != nil {
		f := *a.Failure // the component's value may be shared
		f.Message = r.Redact(f.Message)
		a.Failure = &f
	}
	for i := range a.Phases {
		attrs := make(map[string]any, len(a.Phases[i].Attrs))
		for k, v := range a.Phases[i].Attrs {
			attrs[k] = r.value(v)
		}
		a.Phases[i].Attrs = attrs
	}
}

// value redacts the strings of an attribute value.
func (r *Redactor) value(v any) any {
	switch v := v.(type) {
	case string:
		return r.Redact(v)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = r.Redact(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = r.value(e)
		}
		return out
	default:
		return v
	}
}
