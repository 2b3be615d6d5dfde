package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/history"
	"github.com/probe-dev/probe/core/sink"
)

// watchRetain is how long probe watch keeps each target's attempts.
const watchRetain = time.Hour

// watchSpark is how many of the latest totals a row's sparkline shows.
const watchSpark = 30

func newWatchCmd() *cobra.Command {
	var ff fileFlags
	every := time.Duration(0)
	c := &cobra.Command{
		Use:   "watch FILE",
		Short: "Probe a file's targets continuously in a live terminal view",
		Long: `Probe every target of a pipeline file one attempt at a time, a round every
--every (default: the file's schedule, else 1s), its targets spread over it
and none waiting for another, and show one row per target:
its state, the latest attempt's phases, a sparkline of its recent totals, its
loss over the attempts kept (the last hour) and its failure class.

Keys: up and down (or k and j) pick a target, enter shows its latest
attempt's waterfall and the history of each phase, esc goes back, q or
Ctrl-C quits and restores the terminal.`,
		Example: "  probe watch examples/lab.hcl\n  probe watch pipeline.hcl --every 5s",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return watch(args[0], every, &ff)
		},
	}
	c.Flags().DurationVar(&every, "every", 0, "time from the start of one round to the start of the next (default: the file's schedule, else 1s)")
	ff.register(c)
	return c
}

// watch runs the live view of the file at path until q, Ctrl-C or SIGTERM.
func watch(path string, every time.Duration, ff *fileFlags) error {
	ctx, stop := interruptible()
	defer stop()
	file, pl, err := ff.load(path, nil, nil)
	if err != nil {
		return err
	}
	defer pl.Close()
	defer file.Close()
	if len(file.Targets) == 0 {
		return &exitError{code: exitUsage, msg: "no targets: the file declares no target block"}
	}
	if every < 0 {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("--every %v: want a positive duration", every)}
	}
	every = firstPositive(every, file.Schedule.Every, time.Second)
	opts := file.Options
	opts.Logger = hclog.NewNullLogger() // the screen is the view's
	opts.Attempts = 1
	opts.DiscardAttempts = true
	for _, t := range file.Targets {
		t.Attempts = 1
	}
	eng := engine.New(opts)
	hist := history.New(watchRetain, every)
	names := make([]string, len(file.Targets))
	for i, t := range file.Targets {
		names[i] = eng.Redactor().Target(t).Name
	}
	hist.Retain(names)
	m := &watchModel{file: path, every: every, hist: hist, names: names}
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
	stream := sink.Attach(eng, hist, notify{p})
	var wg sync.WaitGroup
	probing, cancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A round does not wait for the one before: a target that hangs
		// until its timeout holds up no other row.
		round := 0
		eng.Schedule(probing, file.Targets, every, func(int) {
			round++
			p.Send(roundMsg(round))
		})
	}()
	_, err = p.Run()
	cancel()
	wg.Wait()
	if cerr := stream.Close(nil); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// firstPositive returns the first positive duration of ds.
func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// notify is the sink that tells the view an attempt came.
type notify struct{ p *tea.Program }

func (n notify) Attempt(*engine.Attempt) error { n.p.Send(attemptMsg{}); return nil }
func (notify) Flush() error                    { return nil }
func (notify) Close(*engine.Result) error      { return nil }

type (
	attemptMsg struct{}
	roundMsg   int
)

// watchModel is the view of probe watch.
type watchModel struct {
	file   string
	every  time.Duration
	hist   *history.History
	names  []string
	sel    int
	detail bool
	round  int
	width  int
}

func (m *watchModel) Init() tea.Cmd { return nil }

func (m *watchModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if msg.Alt {
			// Esc and the next key read at once (typed quickly, or over a
			// slow link) are what bubbletea reads as Alt and that key: the
			// view binds no Alt key, so it is esc, then the key.
			m.detail = false
			msg.Alt = false
		}
		switch msg.String() {
		case "q", "ctrl+c":
			return m, tea.Quit
		case "up", "k":
			m.sel = max(0, m.sel-1)
		case "down", "j":
			m.sel = min(len(m.names)-1, m.sel+1)
		case "enter":
			m.detail = !m.detail
		case "esc":
			m.detail = false
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case roundMsg:
		m.round = int(msg)
	}
	return m, nil
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline draws vs scaled to their maximum: a negative value (absent) as
// a space, NaN (a failure) as ×.
func sparkline(vs []float64) string {
	top := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	var b strings.Builder
	for _, v := range vs {
		switch {
		case math.IsNaN(v):
			b.WriteRune('×')
		case v < 0:
			b.WriteRune(' ')
		case top == 0:
			b.WriteRune(sparkRunes[0])
		default:
			b.WriteRune(sparkRunes[min(len(sparkRunes)-1, int(v/top*float64(len(sparkRunes)-1)+0.5))])
		}
	}
	return b.String()
}

func fmtMS(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

func (m *watchModel) View() string {
	var b strings.Builder
	fmt.Fprintf(&b, "probe watch %s  every %v  round %d   ↑/↓ pick  enter waterfall  q quit\n\n", m.file, m.every, m.round)
	now := time.Now()
	series := map[string]*history.Series{}
	var phases []string
	for _, name := range m.names {
		s, _ := m.hist.Series(name, now.Add(-watchRetain), now.Add(time.Second))
		series[name] = s
		for _, p := range s.Phases {
			if !slices.Contains(phases, p) {
				phases = append(phases, p)
			}
		}
	}
	if m.detail && m.sel < len(m.names) {
		m.viewDetail(&b, m.names[m.sel], series[m.names[m.sel]])
		return b.String()
	}
	fmt.Fprintf(&b, "  %-24s %-8s", "TARGET", "STATE")
	for _, p := range phases {
		fmt.Fprintf(&b, " %9s", strings.ToUpper(p))
	}
	fmt.Fprintf(&b, " %9s  %-*s %6s  %s\n", "TOTAL", watchSpark, "RECENT TOTALS", "LOSS", "FAILURE")
	for i, t := range m.hist.Targets() {
		s := series[t.Name]
		cursor := "  "
		if i == m.sel {
			cursor = "> "
		}
		fmt.Fprintf(&b, "%s%-24s %-8s", cursor, t.Name, t.State)
		n := len(s.Started)
		for _, p := range phases {
			d := time.Duration(-1)
			if k := slices.Index(s.Phases, p); k >= 0 && n > 0 {
				d = s.Durations[k][n-1]
			}
			fmt.Fprintf(&b, " %9s", fmtMS(d))
		}
		total, failed := time.Duration(-1), 0
		if n > 0 {
			total = s.Total[n-1]
		}
		var spark []float64
		for k := max(0, n-watchSpark); k < n; k++ {
			v := float64(s.Total[k].Microseconds()) / 1000
			if s.Class[k] != "" {
				v = math.NaN()
			}
			spark = append(spark, v)
		}
		for _, c := range s.Class {
			if c != "" {
				failed++
			}
		}
		loss := "-"
		if n > 0 {
			loss = fmt.Sprintf("%.0f%%", 100*float64(failed)/float64(n))
		}
		fmt.Fprintf(&b, " %9s  %-*s %6s  %s\n", fmtMS(total), watchSpark, sparkline(spark), loss, t.Class)
	}
	return b.String()
}

// viewDetail draws target's latest attempt as a waterfall and each phase's
// history as a sparkline.
func (m *watchModel) viewDetail(b *strings.Builder, name string, s *history.Series) {
	fmt.Fprintf(b, "%s  (esc: back)\n\nlatest attempt:\n", name)
	a := m.hist.Latest(name)
	if a == nil {
		b.WriteString("  none yet\n")
		return
	}
	const width = 50
	scale := float64(width) / math.Max(float64(a.Total), 1)
	for _, p := range a.Phases {
		off := int(float64(p.Start) * scale)
		bar := max(1, int(float64(p.Duration)*scale))
		mark := "█"
		if !p.OK {
			mark = "▒"
		}
		fmt.Fprintf(b, "  %-10s %s%s%s %9s\n", p.Name, strings.Repeat(" ", min(off, width)), strings.Repeat(mark, min(bar, width-min(off, width-1))),
			strings.Repeat(" ", max(0, width-off-bar)), fmtMS(p.Duration))
	}
	fmt.Fprintf(b, "  %-10s %s %9s\n", "total", strings.Repeat(" ", width), fmtMS(a.Total))
	if a.Failure != nil {
		fmt.Fprintf(b, "  failed in %s: %s: %s\n", a.Failure.Phase, a.Failure.Class, a.Failure.Message)
	}
	b.WriteString("\nhistory (last 60 attempts, median):\n")
	n := len(s.Started)
	for k, p := range s.Phases {
		var vs, ok []float64
		for i := max(0, n-60); i < n; i++ {
			v := float64(s.Durations[k][i].Microseconds()) / 1000
			if s.Durations[k][i] < 0 {
				v = -1
			} else {
				ok = append(ok, v)
			}
			vs = append(vs, v)
		}
		med := "-"
		if len(ok) > 0 {
			slices.Sort(ok)
			med = fmt.Sprintf("%.1fms", ok[len(ok)/2])
		}
		fmt.Fprintf(b, "  %-10s %-60s %9s\n", p, sparkline(vs), med)
	}
}
