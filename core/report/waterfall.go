package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// barWidth is the width of the waterfall's time axis in characters.
const barWidth = 40

// Waterfall draws every attempt's phases as bars on one time axis per
// attempt, like httpstat, with each phase's attributes below it. With color,
// it paints each phase's bar in its own colour and failures in red, with ANSI
// escapes: the caller decides whether the output is a terminal that wants
// them. Those are its only escapes: the text of a run (a certificate's
// subject, a failure message) is drawn as safe draws it.
func Waterfall(w io.Writer, res *engine.Result, color bool) error {
	style := pen(color)
	for _, tr := range res.Targets {
		t := tr.Target
		for i := range tr.Attempts {
			a := &tr.Attempts[i]
			head := safe(t.Name) + "  " + hostPort(t)
			if a.Address.IsValid() {
				head += "  → " + a.Address.String()
			}
			if len(tr.Attempts) > 1 {
				head += fmt.Sprintf("  attempt %d", a.Seq)
			}
			fmt.Fprintln(w, style.paint(bold, head))
			attempt(w, a, style)
			fmt.Fprintln(w)
		}
		if len(tr.Attempts) == 0 {
			why := "no attempt finished"
			if tr.Interrupted {
				why = "interrupted before any attempt finished"
			}
			fmt.Fprintf(w, "%s  %s  %s\n\n", safe(t.Name), hostPort(t), why)
		}
	}
	return nil
}

// hostPort is t's host and port, an IPv6 address in brackets.
func hostPort(t *engine.Target) string {
	return safe(net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))))
}

func attempt(w io.Writer, a *engine.Attempt, pen pen) {
	scale := float64(barWidth) / float64(max(a.Total, time.Microsecond))
	for i, p := range a.Phases {
		from := int(float64(p.Start) * scale)
		n := max(int(float64(p.Duration)*scale+0.5), 1)
		from = min(from, barWidth-1)
		n = min(n, barWidth-from)
		mark, ink, status := "█", phaseColor(p.Name, i), ""
		if !p.OK {
			mark, ink, status = "▒", red, pen.paint(red, "  FAILED")
		}
		bar := strings.Repeat(" ", from) + pen.paint(ink, strings.Repeat(mark, n)) + strings.Repeat(" ", barWidth-from-n)
		fmt.Fprintf(w, "  %-9s %-11s │%s│ %9s%s\n", safe(p.Name), safe(p.Plugin), bar, FormatDuration(p.Duration), status)
		for _, k := range slices.Sorted(maps.Keys(p.Attrs)) {
			fmt.Fprintf(w, "  %23s %s\n", "", pen.paint(dim, safe(k)+" = "+safe(attrValue(p.Attrs[k]))))
		}
	}
	fmt.Fprintf(w, "  %-21s  %s  %9s  (overhead %s)\n", "total", strings.Repeat(" ", barWidth),
		pen.paint(bold, FormatDuration(a.Total)), FormatDuration(a.Overhead))
	if f := a.Failure; f != nil {
		fmt.Fprintln(w, pen.paint(red, fmt.Sprintf("  failed in %s: %s: %s", safe(f.Phase), safe(string(f.Class)), safe(f.Message))))
	}
}

// SGR parameters of the colours the waterfall uses.
const (
	bold = "1"
	dim  = "2"
	red  = "31"
)

// phaseColors are the colours of the standard phases; others take the
// colour of their position.
var (
	phaseColors = map[string]string{"resolve": "36", "connect": "33", "tls": "35", "http": "32"}
	cycle       = []string{"34", "36", "33", "35", "32"}
)

func phaseColor(name string, i int) string {
	if c, ok := phaseColors[name]; ok {
		return c
	}
	return cycle[i%len(cycle)]
}

// pen paints text with ANSI SGR escapes when true.
type pen bool

func (p pen) paint(sgr, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
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
	case []any, map[string]any: // nested facts, such as dns-miekg's tries
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}
