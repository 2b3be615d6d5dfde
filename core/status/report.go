package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/history"
	"github.com/probe-dev/probe/core/sink"
)

// reportRetain is the retention of a report's history: a run's attempts
// are all kept (up to history.MaxPoints per target).
const reportRetain = 100 * 365 * 24 * time.Hour

// Report is the sink of `probe run -o html`: one self-contained HTML file
// (the status page's script, styles and uPlot inline, the run's data as
// JSON beside them) with the same charts and waterfalls for the run's
// attempts, written at Close. It needs no network to open.
type Report struct {
	w    io.Writer
	file string
	hist *history.History
}

// NewReport returns the HTML report sink writing to w for a run of the
// pipeline file named file.
func NewReport(w io.Writer, file string) *Report {
	return &Report{w: w, file: file, hist: history.New(reportRetain, 0)}
}

// Attempt keeps a.
func (r *Report) Attempt(a *engine.Attempt) error { return r.hist.Attempt(a) }

// Flush does nothing: the report is written whole at Close.
func (*Report) Flush() error { return nil }

// reportData is what the page reads in place of the API.
type reportData struct {
	Title   string                 `json:"title"`
	Targets map[string]any         `json:"targets"`
	Series  map[string]*seriesJSON `json:"series"`
	Latest  map[string]*latestJSON `json:"latest"`
}

// Close writes the report of res's targets.
func (r *Report) Close(res *engine.Result) error {
	if res == nil {
		return nil
	}
	names := make([]string, len(res.Targets))
	for i, t := range res.Targets {
		names[i] = t.Target.Name
	}
	r.hist.Retain(names)
	now := time.Now()
	data := reportData{Title: "probe run " + r.file, Targets: targetsDoc(r.hist, "", ""),
		Series: map[string]*seriesJSON{}, Latest: map[string]*latestJSON{}}
	for _, name := range names {
		data.Series[name], _ = seriesDoc(r.hist, name, now.Add(-reportRetain), now)
		data.Latest[name] = latestDoc(r.hist, name)
	}
	html, err := page(data)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(r.w, html); err != nil {
		return fmt.Errorf("write the HTML report: %w", err)
	}
	return nil
}

var _ sink.Sink = (*Report)(nil)

// page returns the status page with its assets inline and data, which the
// script reads in place of the API, as JSON beside them.
func page(data any) (string, error) {
	read := func(name string) string {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic(err) // embedded
		}
		return string(b)
	}
	js, err := json.Marshal(data) // escapes <, > and &: it cannot end its script element
	if err != nil {
		return "", fmt.Errorf("encode the report's data: %w", err)
	}
	html := read("index.html")
	for _, sub := range []struct{ tag, inline string }{
		{`<link rel="stylesheet" href="assets/uplot/uPlot.min.css">`, "<style>" + read("uplot/uPlot.min.css") + "</style>"},
		{`<link rel="stylesheet" href="assets/style.css">`, "<style>" + read("style.css") + "</style>"},
		{`<script src="assets/uplot/uPlot.iife.min.js"></script>`, "<script>" + read("uplot/uPlot.iife.min.js") + "</script>"},
		{`<script src="assets/app.js"></script>`, `<script id="probe-data" type="application/json">` + string(js) + "</script>\n<script>" + read("app.js") + "</script>"},
	} {
		if !strings.Contains(html, sub.tag) {
			panic("index.html lacks " + sub.tag) // TestReport checks it
		}
		html = strings.Replace(html, sub.tag, sub.inline, 1)
	}
	return strings.Replace(html, "<title>probe status</title>", "<title>probe report</title>", 1), nil
}
