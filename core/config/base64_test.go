package config

import (
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestBase64Encode: base64encode gives an HTTP basic auth header's value,
// and a sensitive input stays sensitive.
func TestBase64Encode(t *testing.T) {
	got, err := functions(nil, newBudget(maxSteps, maxBytes))["base64encode"].Call([]cty.Value{cty.StringVal("prober:hunter2").Mark("sensitive")})
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasMark("sensitive") {
		t.Error("base64encode of a sensitive value is not sensitive")
	}
	if v, _ := got.Unmark(); v.AsString() != "cHJvYmVyOmh1bnRlcjI=" {
		t.Errorf("base64encode = %q", v.AsString())
	}
}

// TestDerivedSecrets: a plugin attribute derived from a sensitive variable
// through functions (base64encode hides its text) is redacted as a whole.
func TestDerivedSecrets(t *testing.T) {
	src := `
variable "password" {
  sensitive = true
  default   = "hunter2"
}
handshake "auth" {
  plugin = "http"
  path   = format("/?auth=%s", base64encode(format("%s:%s", "prober", var.password)))
}
`
	f, diags := NewLoader(Options{Plugins: testPlugins()}).LoadSource("auth.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := "/?auth=cHJvYmVyOmh1bnRlcjI="
	if !slices.Contains(f.Options.Secrets, want) || !slices.Contains(f.Options.Secrets, "hunter2") {
		t.Errorf("Secrets = %q, want the variable's and %q", f.Options.Secrets, want)
	}
}
