package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/probe-dev/probe/core/history"
)

// TestWatchKeysReadAtOnce gives probe watch's view enter, then esc and q
// in one read, as a terminal does when they come faster than the view
// reads (tmux's send-keys under load, a slow link): bubbletea reads esc and
// q as alt+q, which must still go back and quit, not leave the view
// running in its detail.
func TestWatchKeysReadAtOnce(t *testing.T) {
	hist := history.New(time.Hour, time.Second)
	hist.Retain([]string{"a"})
	m := &watchModel{file: "f.hcl", every: time.Second, hist: hist, names: []string{"a"}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var seen []string
	p := tea.NewProgram(keyRecorder{m, &seen}, tea.WithInput(strings.NewReader("\r\x1bq")), tea.WithOutput(io.Discard),
		tea.WithContext(ctx), tea.WithoutSignalHandler())
	if _, err := p.Run(); err != nil {
		t.Fatalf("probe watch's view did not quit on enter, esc and q read at once (keys read: %v): %v", seen, err)
	}
	if m.detail {
		t.Errorf("the view still shows the detail after esc (keys read: %v)", seen)
	}
}

// keyRecorder is a model that notes the keys it is given.
type keyRecorder struct {
	*watchModel
	keys *[]string
}

func (k keyRecorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if key, ok := msg.(tea.KeyMsg); ok {
		*k.keys = append(*k.keys, key.String())
	}
	_, cmd := k.watchModel.Update(msg)
	return k, cmd
}
