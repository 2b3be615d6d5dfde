package engine

import (
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
