package engine

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
)

func TestRedactor(t *testing.T) {
	r := NewRedactor([]string{"tok", "token-123"})
	shared := map[string]any{"header": "Bearer token-123", "list": []string{"a", "tok"},
		"nested": map[string]any{"x": []any{"token-123", 3.0}}, "n": 7}
	failure := &sdk.Failure{Phase: "http", Class: "http.status", Message: "401 for token-123"}
	a := Attempt{Target: "api[tok]", Phases: []Phase{{Name: "http", Attrs: shared}}, Failure: failure}
	r.attempt(&a)
	want := Attempt{Target: "api[(sensitive)]", Phases: []Phase{{Name: "http", Attrs: map[string]any{
		"header": "Bearer (sensitive)", "list": []string{"a", "(sensitive)"},
		"nested": map[string]any{"x": []any{"(sensitive)", 3.0}}, "n": 7}}},
		Failure: &sdk.Failure{Phase: "http", Class: "http.status", Message: "401 for (sensitive)"}}
	if diff := cmp.Diff([]any{want.Target, want.Phases, want.Failure}, []any{a.Target, a.Phases, a.Failure}); diff != "" {
		t.Errorf("redacted attempt (-want +got):\n%s", diff)
	}
	if shared["header"] != "Bearer token-123" || failure.Message != "401 for token-123" {
		t.Error("redaction changed the component's own values")
	}
	var none *Redactor
	if got := none.Redact("token-123"); got != "token-123" {
		t.Errorf("nil redactor changed %q", got)
	}
}

// TestRedactorForms: a secret is redacted in every form in which an output
// can show it encoded, alone and inside longer text.
func TestRedactorForms(t *testing.T) {
	const secret = `hunter2 s/3cr"t+é&x`
	r := NewRedactor([]string{secret})
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	json, _ := json.Marshal("body: " + secret)
	texts := map[string]string{
		"raw":                    "401 for " + secret,
		"url path":               (&url.URL{Scheme: "http", Host: "h", Path: "/x/" + secret}).String(),
		"path segment":           "/x/" + url.PathEscape(secret) + "/y",
		"query":                  "/x?q=" + url.QueryEscape(secret) + "&r=1",
		"query %20":              "/x?q=" + strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
		"base64 alone":           "X-Token: " + b64(base64.StdEncoding, secret),
		"basic auth, aligned":    "Basic " + b64(base64.StdEncoding, "abc"+secret),
		"basic auth, 1 off":      "Basic " + b64(base64.StdEncoding, "user:"+secret+"!"),
		"basic auth, 2 off":      "Basic " + b64(base64.StdEncoding, "us:"+secret+"!!"),
		"url-safe base64, 1 off": b64(base64.RawURLEncoding, "a"+secret),
		"json":                   string(json),
		"go quoted":              strconv.Quote("status " + secret),
		"go quoted, ascii":       strconv.QuoteToASCII(secret),
	}
	for name, text := range texts {
		got := r.Redact(text)
		if !strings.Contains(got, Redacted) {
			t.Errorf("%s: %q is not redacted: %q", name, text, got)
		}
	}
	// What is left is "user:" and, after the redaction, one character
	// that mixes the secret's last bits with the padding.
	got := r.Redact("Basic " + b64(base64.StdEncoding, "user:"+secret))
	if rest, ok := strings.CutPrefix(got, "Basic dXNlcjp"+Redacted); !ok || len(strings.TrimRight(rest, "=")) > 1 {
		t.Errorf("basic auth redacted to %q", got)
	}
	for _, plain := range []string{"127.0.0.1:8443", "Basic dXNlcjpwYXNz", "hunter", "/x/y?q=1"} {
		if got := r.Redact(plain); got != plain {
			t.Errorf("%q redacted to %q", plain, got)
		}
	}
}

// TestRedactorTarget: a target is redacted into a copy, for showing; one
// with no secret is itself.
func TestRedactorTarget(t *testing.T) {
	r := NewRedactor([]string{"s3cr3t-host"})
	p := &Pipeline{Name: "p"}
	tgt := &Target{Name: "api[s3cr3t-host]", Host: "s3cr3t-host.probe.test", Port: 443, Pipeline: p}
	got := r.Target(tgt)
	if got == tgt || got.Name != "api[(sensitive)]" || got.Host != "(sensitive).probe.test" || got.Port != 443 || got.Pipeline != p {
		t.Errorf("redacted target %+v", got)
	}
	if tgt.Host != "s3cr3t-host.probe.test" {
		t.Error("redaction changed the target probed")
	}
	plain := &Target{Name: "web", Host: "web.test"}
	if r.Target(plain) != plain {
		t.Error("a target without a secret was copied")
	}
	a := Attempt{Target: "x", Address: netip.MustParseAddrPort("10.9.8.7:443")}
	NewRedactor([]string{"10.9.8.7"}).attempt(&a)
	if a.Address.IsValid() {
		t.Errorf("a secret address is shown: %v", a.Address)
	}
}
