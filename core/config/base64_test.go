package config

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestBase64Encode: base64encode gives an HTTP basic auth header's value,
// and a sensitive input stays sensitive.
func TestBase64Encode(t *testing.T) {
	got, err := base64Func.Call([]cty.Value{cty.StringVal("prober:hunter2").Mark("sensitive")})
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
