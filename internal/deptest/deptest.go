// Package deptest checks the import rules of DESIGN §2 in a module of the
// repository: every Go file, test files and the programs under testdata
// included, whatever its build constraints. Each module calls Check from a
// test of its own (this module from internal/deptest, plugins/tailscale from
// its internal/deptest), since `go test ./...` stops at a module's edge.
//
// The rules, by where a file is (paths from the repository's root):
//
//   - core/: a core package, its own test files included, depends on
//     nothing under plugins/ or cmd/. An external test package (package
//     X_test) or a test program under testdata is a client of core, as a Go
//     service embedding probe is: of plugins/ it imports plugins/builtins
//     alone, the list the core is handed, and of cmd/ nothing.
//   - core/sdk, the contract a plugin author reads, imports nothing else of
//     the repository, and depends on no module of the transport: neither
//     go-plugin, gRPC nor protobuf (core/pluginrpc's). Its tests may.
//   - plugins/NAME and examples/plugins/NAME: a plugin imports core/sdk and
//     core/sdk/serve of the repository and its own packages, its tests also
//     internal/ (the loopback lab); it depends on no other plugin, test
//     files included.
//   - plugins/builtins imports core/sdk and the plugins it lists.
//   - Anywhere else, a plugin is imported only through plugins/builtins:
//     the built-ins are listed once.
package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Repo is the repository's module path; the path of a package of any of its
// modules starts with it.
const Repo = "github.com/probe-dev/probe"

// File is one Go file as the rules see it.
type File struct {
	// Path is the file's path from the repository's root, slash-separated.
	Path string
	// Dir is its package's directory from the repository's root, "" for
	// the root.
	Dir string
	// XTest says the file is of an external test package (package X_test).
	XTest bool
	// Test says it is a _test.go file.
	Test bool
	// TestData says it is under a testdata directory: a program the tests
	// build.
	TestData bool
	// Imports are the import paths it imports.
	Imports []string
}

// Reach returns the import paths of the packages the package importPath
// depends on, directly or not, itself included.
type Reach func(importPath string) []string

// transport are the modules of the plugin protocol's transport, which the
// sdk depends on none of.
var transport = []string{"github.com/hashicorp/go-plugin", "google.golang.org/grpc", "google.golang.org/protobuf"}

// Violations returns what breaks the rules in f, one sentence each.
func Violations(f File, reach Reach) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, f.Path+": "+fmt.Sprintf(format, args...)) }
	plugin := pluginOf(f.Dir)
	sdk := under(f.Dir, "core/sdk") && !under(f.Dir, "core/sdk/serve") && !f.Test
	for _, full := range f.Imports {
		imp, ours := Rel(full)
		if !ours {
			continue
		}
		// A plugin is imported only by itself and by plugins/builtins.
		if p := pluginOf(imp); p != "" && p != "plugins/builtins" && p != plugin && plugin != "plugins/builtins" {
			bad("imports %s: outside it, a plugin is imported only through plugins/builtins", imp)
		}
		switch {
		case plugin == "plugins/builtins":
			if imp != "core/sdk" && (pluginOf(imp) == "" || pluginOf(imp) == plugin) && !f.Test {
				bad("imports %s: plugins/builtins imports core/sdk and the plugins it lists", imp)
			}
		case plugin != "":
			allowed := imp == "core/sdk" || imp == "core/sdk/serve" || under(imp, plugin) || f.Test && under(imp, "internal")
			if !allowed {
				bad("imports %s: a plugin imports core/sdk, core/sdk/serve and its own packages (its tests also internal/)", imp)
			}
		case under(f.Dir, "core") && (f.XTest || f.TestData):
			if under(imp, "plugins") && imp != "plugins/builtins" {
				bad("imports %s: a test of core is handed the built-ins through plugins/builtins, never a plugin itself", imp)
			}
		}
	}
	for _, full := range f.Imports {
		imp, _ := Rel(full)
		for _, dfull := range reach(full) {
			dep, ours := Rel(dfull)
			switch {
			case ours && under(f.Dir, "core") && under(dep, "cmd"):
				bad("depends on %s (through %s): core never depends on cmd", dep, imp)
			case ours && under(f.Dir, "core") && !f.XTest && !f.TestData && under(dep, "plugins"):
				bad("depends on %s (through %s): core never depends on plugins; it is handed the list", dep, imp)
			case ours && sdk && dep != "core/sdk":
				bad("depends on %s (through %s): the sdk imports nothing else of this repository", dep, imp)
			case !ours && sdk && slices.ContainsFunc(transport, func(t string) bool { return under(dep, t) }):
				bad("depends on %s (through %s): the sdk is the plugin contract, not its transport (core/pluginrpc)", dep, imp)
			case ours && plugin != "" && plugin != "plugins/builtins" && pluginOf(dep) != "" && pluginOf(dep) != plugin:
				bad("depends on %s (through %s): a plugin depends on no other plugin", dep, imp)
			}
		}
	}
	return out
}

// Rel returns the path from the repository's root of a package of the
// repository ("core/sdk"; "" for the root), and false for any other package.
func Rel(importPath string) (string, bool) {
	if importPath == Repo {
		return "", true
	}
	return strings.CutPrefix(importPath, Repo+"/")
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// pluginOf returns the plugin directory dir is in ("plugins/tls",
// "examples/plugins/banner", "plugins/builtins"), "" for none.
func pluginOf(dir string) string {
	parts := strings.Split(dir, "/")
	switch {
	case len(parts) >= 2 && parts[0] == "plugins":
		return path.Join(parts[:2]...)
	case len(parts) >= 3 && parts[0] == "examples" && parts[1] == "plugins":
		return path.Join(parts[:3]...)
	}
	return ""
}

// Check checks the rules in every Go file of the module whose root is dir,
// and that its packages are named and documented as the repository's are.
func Check(t *testing.T, dir string) {
	mod := Module(t, dir)
	t.Run("imports", func(t *testing.T) {
		files := Files(t, dir, mod)
		if len(files) == 0 {
			t.Fatalf("no Go file in %s", dir)
		}
		reach := reachOf(t, dir, files)
		for _, f := range files {
			for _, v := range Violations(f, reach) {
				t.Error(v)
			}
		}
	})
	t.Run("package names", func(t *testing.T) { packageNames(t, dir) })
	t.Run("package docs", func(t *testing.T) { packageDocs(t, dir) })
}

// Module returns the directory, from the repository's root, of the module
// whose root is dir ("" for the repository's own).
func Module(t *testing.T, dir string) string {
	t.Helper()
	var m struct{ Path string }
	if err := json.Unmarshal(goCmd(t, dir, "list", "-m", "-json"), &m); err != nil {
		t.Fatalf("decode go list -m: %v", err)
	}
	if m.Path != Repo && !strings.HasPrefix(m.Path, Repo+"/") {
		t.Fatalf("module %s is not of the repository %s", m.Path, Repo)
	}
	return strings.TrimPrefix(strings.TrimPrefix(m.Path, Repo), "/")
}

// Files parses every Go file of the module whose root is dir and whose
// directory from the repository's root is mod: test files and testdata
// included, nested modules and directories Go ignores (".x", "_x") not.
func Files(t *testing.T, dir, mod string) []File {
	t.Helper()
	var files []File
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if name := d.Name(); strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own, checked by its own test
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		af, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		f := File{
			Path:     path.Join(mod, filepath.ToSlash(rel)),
			Dir:      path.Join(mod, filepath.ToSlash(filepath.Dir(rel))),
			Test:     strings.HasSuffix(p, "_test.go"),
			XTest:    strings.HasSuffix(af.Name.Name, "_test"),
			TestData: slices.Contains(strings.Split(filepath.ToSlash(rel), "/"), "testdata"),
		}
		if f.Dir == "." {
			f.Dir = ""
		}
		for _, is := range af.Imports {
			imp, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			f.Imports = append(f.Imports, imp)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatalf("read the module's Go files: %v", err)
	}
	return files
}

// reachOf returns the dependencies of each package, from `go list -deps
// -test` for those the go command builds here and from files for the
// programs under testdata, which it does not see.
func reachOf(t *testing.T, dir string, files []File) Reach {
	t.Helper()
	deps := map[string][]string{}
	out := goCmd(t, dir, "list", "-deps", "-test", "-json=ImportPath,Deps", "./...")
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list -deps: %v", err)
		}
		if strings.Contains(p.ImportPath, " ") || strings.HasSuffix(p.ImportPath, ".test") {
			continue // a package built for a test: its test files are parsed
		}
		deps[p.ImportPath] = append([]string{p.ImportPath}, p.Deps...)
	}
	// Test programs under testdata, by their non-test files.
	byPkg := map[string][]File{}
	for _, f := range files {
		if f.TestData && !f.Test {
			p := path.Join(Repo, f.Dir)
			byPkg[p] = append(byPkg[p], f)
		}
	}
	var reach Reach
	reach = func(pkg string) []string {
		if r, ok := deps[pkg]; ok {
			return r
		}
		deps[pkg] = []string{pkg} // a cycle stops here
		set := map[string]bool{pkg: true}
		for _, f := range byPkg[pkg] {
			for _, imp := range f.Imports {
				for _, d := range reach(imp) {
					set[d] = true
				}
			}
		}
		r := make([]string, 0, len(set))
		for d := range set {
			r = append(r, d)
		}
		sort.Strings(r)
		deps[pkg] = r
		return r
	}
	return reach
}

// goCmd runs the go command in dir and returns its output.
func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", cmd, dir, err, &stderr)
	}
	return out
}

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string // the first sentence of the package comment
}

// list runs `go list -json` in dir on patterns.
func list(t *testing.T, dir string, patterns ...string) []pkg {
	t.Helper()
	out := goCmd(t, dir, append([]string{"list", "-json=ImportPath,Name,Doc"}, patterns...)...)
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

// packageNames checks that no package name has a hyphen or shadows a
// standard library package (tlshandshake, not tls).
func packageNames(t *testing.T, dir string) {
	std := map[string]string{}
	for _, p := range list(t, dir, "std") {
		if !slices.Contains(strings.Split(p.ImportPath, "/"), "internal") && !strings.HasPrefix(p.ImportPath, "vendor/") {
			std[p.Name] = p.ImportPath
		}
	}
	for _, p := range list(t, dir, "./...") {
		if strings.Contains(p.Name, "-") {
			t.Errorf("%s: package name %q contains a hyphen", p.ImportPath, p.Name)
		}
		if s, ok := std[p.Name]; ok && p.Name != "main" {
			t.Errorf("%s: package name %q shadows the standard library's %s", p.ImportPath, p.Name, s)
		}
	}
}

// packageDocs checks that every package says what it is for, in a comment
// that starts with its name ("Package engine ..." or, for a command,
// "Command probe ...").
func packageDocs(t *testing.T, dir string) {
	for _, p := range list(t, dir, "./...") {
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: package comment %q does not start with %q", p.ImportPath, p.Doc, want)
		}
	}
}
