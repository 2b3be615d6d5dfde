package engine

import (
	"slices"
	"strings"
)

// Redacted stands in for a secret in outputs.
const Redacted = "(sensitive)"

// Redactor replaces secrets (the strings of sensitive variables) in what a
// run reports. The nil Redactor replaces nothing.
type Redactor struct {
	r *strings.Replacer
}

// NewRedactor returns a redactor of secrets, or nil when there are none.
func NewRedactor(secrets []string) *Redactor {
	if len(secrets) == 0 {
		return nil
	}
	// Longest first, so that a secret containing another is replaced whole.
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(sorted))
	for _, s := range sorted {
		pairs = append(pairs, s, Redacted)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// Redact returns s with every secret replaced.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	return r.r.Replace(s)
}

// attempt redacts an attempt's target name, failure message and its phases'
// attributes, in place.
func (r *Redactor) attempt(a *Attempt) {
	if r == nil {
		return
	}
	a.Target = r.Redact(a.Target)
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
