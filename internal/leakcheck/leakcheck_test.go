package leakcheck

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps its cleanups and errors to itself.
type recorder struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Error(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)) }

// end runs the cleanups as the testing package does, last first.
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestLeaks(t *testing.T) {
	wait = 200 * time.Millisecond
	t.Cleanup(func() { wait = 5 * time.Second })
	tests := []struct {
		name string
		leak func(t *testing.T, stop <-chan struct{})
		want []string // in the one error each check reports; none for a clean test
	}{
		{"clean", func(t *testing.T, stop <-chan struct{}) {
			go time.Sleep(50 * time.Millisecond) // ends within the wait
			f, err := os.Open("/dev/null")
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, nil},
		{"goroutine", func(t *testing.T, stop <-chan struct{}) {
			go func() { <-stop }()
		}, []string{"1 goroutines left behind", "leakcheck.TestLeaks"}},
		{"file", func(t *testing.T, stop <-chan struct{}) {
			f, err := os.Open("/dev/null")
			if err != nil {
				t.Fatal(err)
			}
			go func() { <-stop; f.Close() }()
		}, []string{"1 goroutines left behind", "1 file descriptors left open", "/dev/null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			Goroutines(r)
			FDs(r)
			stop := make(chan struct{})
			tt.leak(t, stop)
			r.end()
			close(stop)
			got := strings.Join(r.errs, "\n")
			if len(tt.want) == 0 && got != "" {
				t.Errorf("clean test reported:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("report does not say %q:\n%s", w, got)
				}
			}
		})
	}
}
