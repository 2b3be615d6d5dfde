package report

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// FormatDuration prints a duration for people: two decimals of a
// millisecond below 10 ms, one below a second, then seconds.
func FormatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", ms)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// Table writes one row per target with the median of each phase over its
// successful attempts, its attempts ok out of run, and its failure classes
// ("interrupted" for a target none of whose attempts finished); then the
// statistics of every phase over the whole run, and a summary line.
func Table(w io.Writer, res *engine.Result) error {
	phases := slices.DeleteFunc(slices.Clone(res.Phases), func(p string) bool { return p == engine.TotalPhase })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"TARGET", "ADDRESS", "OK"}
	for _, p := range phases {
		head = append(head, safe(strings.ToUpper(p)))
	}
	head = append(head, "TOTAL", "FAILURE")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, tr := range res.Targets {
		if len(tr.ByAddress) > 0 { // address_policy "all": a row per address
			for _, ar := range tr.ByAddress {
				addr := "-"
				if ar.Address.IsValid() {
					addr = ar.Address.String()
				}
				fmt.Fprintln(tw, strings.Join(tableRow(safe(tr.Target.Name), addr, phases, ar.Stats, ar.FailuresByClass), "\t"))
			}
			continue
		}
		row := tableRow(safe(tr.Target.Name), address(tr), phases, tr.Stats, tr.FailuresByClass)
		if tr.Interrupted {
			row[len(row)-1] = "interrupted"
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(res.Phases) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "PHASE\tCOUNT\tOK\tFAILED\tMIN\tMEAN\tSTDDEV\tP50\tP90\tP99\tMAX\t")
		for _, p := range res.Phases {
			s := res.Stats[p]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", safe(p), s.Count, s.OK, s.Failed,
				FormatDuration(s.Min), FormatDuration(s.Mean), FormatDuration(s.Stddev),
				FormatDuration(s.P50), FormatDuration(s.P90), FormatDuration(s.P99), FormatDuration(s.Max))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	sum := res.Summary
	line := fmt.Sprintf("\n%d targets: %d ok, %d failed", sum.Targets, sum.OK, sum.Failed)
	if c := classes(sum.FailuresByClass); c != "" {
		line += " (" + c + ")"
	}
	if res.Interrupted { // even 0: the line says the run was cut short
		line += fmt.Sprintf(", %d interrupted", sum.Interrupted)
	}
	line += " in " + FormatDuration(res.Duration)
	_, err := fmt.Fprintln(w, line)
	return err
}

// tableRow is a row of the target table: name, address, attempts ok out of
// run, the median of each phase over the successful attempts, the failure
// classes.
func tableRow(name, addr string, phases []string, st map[string]stats.Summary, failures map[sdk.Class]int) []string {
	total := st[engine.TotalPhase]
	row := []string{name, addr, fmt.Sprintf("%d/%d", total.OK, total.Count)}
	for _, p := range append(phases, engine.TotalPhase) {
		s, seen := st[p]
		switch {
		case !seen:
			row = append(row, "")
		case s.OK == 0:
			row = append(row, "-")
		default:
			row = append(row, FormatDuration(s.P50))
		}
	}
	return append(row, classes(failures))
}

// address is the addresses a target's attempts used, most recent first
// when they differ.
func address(tr *engine.TargetResult) string {
	var addrs []string
	for i := len(tr.Attempts) - 1; i >= 0; i-- {
		if a := tr.Attempts[i].Address; a.IsValid() && !slices.Contains(addrs, a.String()) {
			addrs = append(addrs, a.String())
		}
	}
	if len(addrs) == 0 {
		return "-"
	}
	return strings.Join(addrs, ",")
}

// classes lists failure classes with their counts, most frequent first.
func classes(m map[sdk.Class]int) string {
	cs := make([]sdk.Class, 0, len(m))
	for c := range m {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if m[cs[i]] != m[cs[j]] {
			return m[cs[i]] > m[cs[j]]
		}
		return cs[i] < cs[j]
	})
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s×%d", safe(string(c)), m[c])
	}
	return strings.Join(parts, " ")
}
