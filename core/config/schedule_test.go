package config

import (
	"bytes"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want time.Duration
		// retain is the Schedule.Retain wanted.
		retain time.Duration
		// attempts is the Schedule.RetainAttempts wanted.
		attempts time.Duration
		// histograms is the Schedule.Histograms wanted.
		histograms string
	}{
		{name: "none", src: `run { attempts = 2 }`},
		{name: "every", src: `schedule { every = "15s" }`, want: 15 * time.Second},
		{name: "from a variable", src: `
variable "every" { default = "250ms" }
schedule { every = var.every }`, want: 250 * time.Millisecond},
		{name: "retain", src: `schedule {
  every  = "15s"
  retain = "2h"
}`, want: 15 * time.Second, retain: 2 * time.Hour},
		{name: "retain_attempts", src: `schedule {
  every           = "15s"
  retain_attempts = "3h"
}`, want: 15 * time.Second, attempts: 3 * time.Hour},
		{name: "classic histograms", src: `schedule {
  every      = "15s"
  histograms = "classic"
}`, want: 15 * time.Second, histograms: "classic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
			f, diags := l.LoadSource("schedule.hcl", []byte(tt.src))
			if diags.HasErrors() {
				var buf bytes.Buffer
				_ = l.WriteDiagnostics(&buf, diags, 100, false)
				t.Fatalf("diagnostics:\n%s", &buf)
			}
			if f.Schedule.Every != tt.want {
				t.Errorf("Schedule.Every = %v, want %v", f.Schedule.Every, tt.want)
			}
			if f.Schedule.Retain != tt.retain {
				t.Errorf("Schedule.Retain = %v, want %v", f.Schedule.Retain, tt.retain)
			}
			if f.Schedule.RetainAttempts != tt.attempts {
				t.Errorf("Schedule.RetainAttempts = %v, want %v", f.Schedule.RetainAttempts, tt.attempts)
			}
			if f.Schedule.Histograms != tt.histograms {
				t.Errorf("Schedule.Histograms = %q, want %q", f.Schedule.Histograms, tt.histograms)
			}
		})
	}
}

func TestScheduleHistogramsInvalid(t *testing.T) {
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	_, diags := l.LoadSource("schedule.hcl", []byte(`schedule {
  every      = "15s"
  histograms = "clasic"
}`))
	want := `histograms must be one of "native", "classic"; got "clasic". Did you mean "classic"?`
	if !diags.HasErrors() || diags[0].Detail != want {
		t.Errorf("diagnostics %v, want one saying %s", diags, want)
	}
}

func TestScheduleRetainAttemptsLonger(t *testing.T) {
	for src, line := range map[string]int{`schedule {
  every           = "15s"
  retain          = "2h"
  retain_attempts = "3h"
}`: 4, `schedule {
  every           = "15s"
  retain_attempts = "25h"
}`: 3} {
		l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
		_, diags := l.LoadSource("schedule.hcl", []byte(src))
		if !diags.HasErrors() || diags[0].Summary != "Invalid retain_attempts" || diags[0].Subject == nil || diags[0].Subject.Start.Line != line {
			t.Errorf("diagnostics %v, want one on line %d saying retain_attempts is longer than retain", diags, line)
		}
	}
}
