package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/probe-dev/probe/core/report"
)

// Progress bar timing: nothing for a run shorter than progressDelay, then a
// redraw every progressEvery.
const (
	progressDelay = time.Second
	progressEvery = 100 * time.Millisecond
	progressWidth = 30
)

// progressSource is what the bar watches: an engine.
type progressSource interface {
	Progress() (done, planned int64)
}

// startProgress draws a progress bar of src's rounds on w, a terminal,
// after delay and then every every, until stop is called; stop erases it.
func startProgress(w io.Writer, src progressSource, delay, every time.Duration) (stop func()) {
	quit, finished := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		wait := time.NewTimer(delay)
		defer wait.Stop()
		select {
		case <-wait.C:
		case <-quit:
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			done, planned := src.Progress()
			fmt.Fprintf(w, "\r%s\x1b[K", progressLine(done, planned, time.Since(start)))
			select {
			case <-tick.C:
			case <-quit:
				fmt.Fprint(w, "\r\x1b[K")
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// progressLine is one state of the bar:
// "[██████░░░░░░] 1200/3000 attempts  40%  1.20s, about 1.80s left".
func progressLine(done, planned int64, elapsed time.Duration) string {
	planned = max(planned, done, 1)
	filled := int(done * progressWidth / planned)
	line := fmt.Sprintf("[%s%s] %d/%d attempts  %3d%%  %s", strings.Repeat("█", filled),
		strings.Repeat("░", progressWidth-filled), done, planned, done*100/planned, report.FormatDuration(elapsed))
	if done > 0 && done < planned {
		left := time.Duration(float64(elapsed) * float64(planned-done) / float64(done))
		line += ", about " + report.FormatDuration(left) + " left"
	}
	return line
}

// progressFor starts a progress bar on stderr for a run of eng rendered in
// format, when the bar helps: stderr is a terminal, the output is for
// people (table, waterfall), and no -v logs share stderr. The returned stop
// erases it; it does nothing when there is no bar.
func progressFor(format string, eng progressSource) (stop func()) {
	if (format != "table" && format != "waterfall") || verbosity > 0 || !isTerminal(os.Stderr) {
		return func() {}
	}
	return startProgress(os.Stderr, eng, progressDelay, progressEvery)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// colorful reports whether output to w may be coloured: w is a terminal and
// NO_COLOR (no-color.org) is unset or empty.
func colorful(w io.Writer) bool {
	return isTerminal(w) && os.Getenv("NO_COLOR") == ""
}
