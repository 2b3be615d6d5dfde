package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/engine"
)

// FuzzLoad feeds the loader arbitrary bytes: it must answer with a file or
// with diagnostics, never panic, and never return a file together with
// errors, and every target it loads has a host engine.CheckHost accepts.
// The seeds are the error fixtures, the valid file of the tests, that file
// with hosts that hold a NUL or an escape sequence, and with what went past
// the limits of a file before there were any (docs/reliability.md): 70,000
// nested lists, a long number, a for_each of a billion elements, a string a
// gigabyte wide, JSON nested 200 deep.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/errors/*.hcl")
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(validFile))
	// Hosts with a NUL or a terminal escape, raw and as HCL escapes.
	for _, host := range []string{"localhost\x00.probe.test", "\x1b]0;title\x07api.probe.test", `localhost\u0000.probe.test`, `\u001b[2J.probe.test`} {
		f.Add([]byte(strings.Replace(validFile, `"default.example"`, `"`+host+`"`, 1)))
	}
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, hostile := range []string{
		"x = " + nested(70_000),
		"x = " + strings.Repeat("9", 1001),
		`target "t" {
  for_each = setproduct(range(1000), range(1000), range(1000))
  host     = "localhost"
  port     = 1
  pipeline = pipeline.https
}`,
		`target "t" {
  host     = format("%999999999d", 1)
  port     = 1
  pipeline = pipeline.https
}`,
		`target "t" {
  for_each = jsondecode("` + nested(200) + `")
  host     = "localhost"
  port     = 1
  pipeline = pipeline.https
}`,
	} {
		f.Add([]byte(validFile + hostile))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }, Getenv: func(string) string { return "" }})
		file, diags := l.LoadSource("fuzz.hcl", src)
		if diags.HasErrors() && file != nil {
			t.Fatalf("a file and errors at once: %v", diags)
		}
		if !diags.HasErrors() && file == nil {
			t.Fatal("neither a file nor an error")
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
		}
		if file != nil {
			for _, tg := range file.Targets {
				if err := engine.CheckHost(tg.Host); err != nil {
					t.Fatalf("target %q loaded with a bad host: %v", tg.Name, err)
				}
			}
			_ = file.Close()
		}
	})
}
