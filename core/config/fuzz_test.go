package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds the loader arbitrary bytes: it must answer with a file or
// with diagnostics, never panic, and never return a file together with
// errors. The seeds are the error fixtures and the valid file of the tests.
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
			_ = file.Close()
		}
	})
}
