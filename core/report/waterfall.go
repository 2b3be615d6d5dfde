package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// barWidth is the width of the waterfall's time axis in characters.
const barWidth = 40

// Waterfall draws every attempt's phases as bars on one time axis per
// attempt, like httpstat, with each phase's attributes below it.
func Waterfall(w io.Writer, res *engine.Result) error {
	for _, tr := range res.Targets {
		t := tr.Target
		for i := range tr.Attempts {
			a := &tr.Attempts[i]
			head := fmt.Sprintf("%s  %s:%d", t.Name, t.Host, t.Port)
			if a.Address.IsValid() {
				head += "  → " + a.Address.String()
			}
			if len(tr.Attempts) > 1 {
				head += fmt.Sprintf("  attempt %d", a.Seq)
			}
			fmt.Fprintln(w, head)
			attempt(w, a)
			fmt.Fprintln(w)
		}
		if len(tr.Attempts) == 0 {
			fmt.Fprintf(w, "%s  %s:%d  no attempt finished\n\n", t.Name, t.Host, t.Port)
		}
	}
	return nil
}

func attempt(w io.Writer, a *engine.Attempt) {
	scale := float64(barWidth) / float64(max(a.Total, time.Microsecond))
	for _, p := range a.Phases {
		from := int(float64(p.Start) * scale)
		n := max(int(float64(p.Duration)*scale+0.5), 1)
		from = min(from, barWidth-1)
		n = min(n, barWidth-from)
		mark := "█"
		status := ""
		if !p.OK {
			mark = "▒"
			status = "  FAILED"
		}
		bar := strings.Repeat(" ", from) + strings.Repeat(mark, n) + strings.Repeat(" ", barWidth-from-n)
		fmt.Fprintf(w, "  %-9s %-11s │%s│ %9s%s\n", p.Name, p.Plugin, bar, FormatDuration(p.Duration), status)
		for _, k := range slices.Sorted(maps.Keys(p.Attrs)) {
			fmt.Fprintf(w, "  %23s %s = %s\n", "", k, attrValue(p.Attrs[k]))
		}
	}
	fmt.Fprintf(w, "  %-21s  %s  %9s  (overhead %s)\n", "total", strings.Repeat(" ", barWidth), FormatDuration(a.Total), FormatDuration(a.Overhead))
	if f := a.Failure; f != nil {
		fmt.Fprintf(w, "  failed in %s: %s: %s\n", f.Phase, f.Class, f.Message)
	}
}

func attrValue(v any) string {
	switch v := v.(type) {
	case []string:
		return strings.Join(v, ", ")
	case string:
		if v == "" {
			return "(none)"
		}
		return v
	case float64:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprint(v)
	}
}
