package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module's path.
const module = "github.com/probe-dev/probe"

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string   // the first sentence of the package comment
	Deps       []string // every package it imports, directly or not; tests excluded
}

// list runs `go list -json` on patterns.
func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Name,Doc,Deps"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, &stderr)
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

// ours returns the packages of this module among paths.
func ours(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == module || strings.HasPrefix(p, module+"/") {
			out = append(out, p)
		}
	}
	return out
}

// under reports whether path is dir of this module or a package below it.
func under(path, dir string) bool {
	dir = module + "/" + dir
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// TestImports checks the layering: core never imports plugins or cmd, and
// the SDK that plugin authors import pulls in nothing of the module but the
// wire protocol and socket passing.
func TestImports(t *testing.T) {
	pkgs := list(t, module+"/core/...")
	if len(pkgs) == 0 {
		t.Fatal("go list found no package under core/")
	}
	for _, p := range pkgs {
		for _, dep := range ours(p.Deps) {
			if under(dep, "plugins") || under(dep, "cmd") {
				t.Errorf("%s depends on %s: core must not depend on plugins or cmd", p.ImportPath, dep)
			}
			sdkAllowed := under(dep, "core/sdk") || under(dep, "core/proto") || under(dep, "core/fdpass")
			if under(p.ImportPath, "core/sdk") && !sdkAllowed {
				t.Errorf("%s depends on %s: of this module the SDK may depend only on core/proto and core/fdpass", p.ImportPath, dep)
			}
		}
	}
}

// TestPackageNames checks that no package name has a hyphen or shadows a
// standard library package (tlshandshake, not tls).
func TestPackageNames(t *testing.T) {
	std := map[string]string{}
	for _, p := range list(t, "std") {
		if !slices.Contains(strings.Split(p.ImportPath, "/"), "internal") && !strings.HasPrefix(p.ImportPath, "vendor/") {
			std[p.Name] = p.ImportPath
		}
	}
	for _, p := range list(t, module+"/...") {
		if strings.Contains(p.Name, "-") {
			t.Errorf("%s: package name %q contains a hyphen", p.ImportPath, p.Name)
		}
		if s, ok := std[p.Name]; ok && p.Name != "main" {
			t.Errorf("%s: package name %q shadows the standard library's %s", p.ImportPath, p.Name, s)
		}
	}
}

// TestPackageDocs checks that every package says what it is for, in a
// comment that starts with its name ("Package engine ..." or, for a
// command, "Command probe ...").
func TestPackageDocs(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: package comment %q does not start with %q", p.ImportPath, p.Doc, want)
		}
	}
}
