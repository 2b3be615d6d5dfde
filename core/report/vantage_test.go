package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestVantage checks that a named vantage is a label on every series of
// -o prometheus and a field of -o json and -o jsonl, and that without one
// there is neither label nor field (not an empty one).
func TestVantage(t *testing.T) {
	for _, vantage := range []string{"eu-west", ""} {
		var prom bytes.Buffer
		if err := feed(NewPrometheusSink(&prom, vantage), result()); err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(&prom)
		if err != nil {
			t.Fatal(err)
		}
		series := 0
		for name, mf := range families {
			for _, m := range mf.Metric {
				series++
				got, has := "", false
				for _, l := range m.Label {
					if l.GetName() == "vantage" {
						got, has = l.GetValue(), true
					}
				}
				if has != (vantage != "") || got != vantage {
					t.Errorf("vantage %q: %s%v has vantage %q (present %v)", vantage, name, m.Label, got, has)
				}
			}
		}
		if series < 10 {
			t.Errorf("vantage %q: %d series, want the run's metrics", vantage, series)
		}

		var doc bytes.Buffer
		if err := feed(JSONSink(&doc, "f.hcl", vantage), result()); err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(doc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if got, has := d["vantage"]; has != (vantage != "") || (has && got != vantage) {
			t.Errorf("-o json with vantage %q: vantage field %v (present %v)", vantage, got, has)
		}

		var lines bytes.Buffer
		if err := feed(NewJSONLines(&lines, vantage), result()); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
			var a map[string]any
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatal(err)
			}
			if got, has := a["vantage"]; has != (vantage != "") || (has && got != vantage) {
				t.Errorf("-o jsonl with vantage %q: line %s", vantage, line)
			}
		}
	}
}
