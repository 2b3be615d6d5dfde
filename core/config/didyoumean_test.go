package config

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDidYouMean checks that every kind of misspelt reference in
// testdata/errors/misspelt_references.hcl is answered with the name meant.
func TestDidYouMean(t *testing.T) {
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	_, diags := l.LoadFile("testdata/errors/misspelt_references.hcl")
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%d: %s", d.Subject.Start.Line, hint(d.Detail)))
	}
	sort.Strings(got)
	want := []string{
		`11: Did you mean "resolver.lab"?`,
		`12: Did you mean "tcp"?`,
		`13: Did you mean "tls"?`,
		`17: Did you mean "port"?`,
		`18: Did you mean "https"?`,
		`23: Did you mean "value"?`,
		`24: Did you mean "pipeline.https"?`,
		`3: Did you mean "parallel"?`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hints (-want +got):\n%s", diff)
	}
}

// hint returns the "Did you mean" sentence of a diagnostic's detail.
func hint(detail string) string {
	if i := strings.Index(detail, "Did you mean"); i >= 0 {
		return detail[i:]
	}
	return "(none) " + detail
}
