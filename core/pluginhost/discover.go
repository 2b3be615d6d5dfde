package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// BinaryPrefix starts the file name of every plugin binary: plugin NAME is
// the file probe-plugin-NAME.
const BinaryPrefix = "probe-plugin-"

// PathEnv lists directories to search for plugin binaries, first, separated
// like PATH.
const PathEnv = "PROBE_PLUGIN_PATH"

// Dir is a directory searched for plugin binaries and why it is searched.
type Dir struct {
	Path  string
	Where string // "PROBE_PLUGIN_PATH", "next to probe", "~/.probe/plugins"
}

// SearchPath returns the directories searched for plugin binaries, in order:
// PROBE_PLUGIN_PATH, the directory of the probe executable, then
// ~/.probe/plugins.
func SearchPath() []Dir {
	var dirs []Dir
	for _, d := range filepath.SplitList(os.Getenv(PathEnv)) {
		if d != "" {
			dirs = append(dirs, Dir{Path: d, Where: PathEnv})
		}
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, Dir{Path: filepath.Dir(exe), Where: "next to probe"})
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, Dir{Path: filepath.Join(home, ".probe", "plugins"), Where: "~/.probe/plugins"})
	}
	return dirs
}

// Find returns the path of plugin name's binary: the first
// probe-plugin-NAME on the search path that may run. When there is none, the
// error is a *NotFoundError.
func Find(name string) (string, error) {
	var tried []Dir
	for _, d := range SearchPath() {
		path := filepath.Join(d.Path, BinaryPrefix+name)
		err := CheckBinary(path)
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		tried = append(tried, d)
	}
	return "", &NotFoundError{Name: name, Tried: tried}
}

// NotFoundError is Find's error when no directory of the search path holds
// the plugin's binary. It names the directories tried and what to do.
type NotFoundError struct {
	Name  string
	Tried []Dir
	// Build says how to build the binary, when the caller knows: it is
	// advised first.
	Build string
}

func (e *NotFoundError) Error() string {
	dirs := make([]string, len(e.Tried))
	for i, d := range e.Tried {
		dirs[i] = fmt.Sprintf("%s (%s)", d.Path, d.Where)
	}
	msg := fmt.Sprintf("no %s%s in %s; ", BinaryPrefix, e.Name, strings.Join(dirs, ", "))
	if e.Build != "" {
		msg += "build it with " + e.Build + ", or "
	}
	return msg + fmt.Sprintf("put it in one of those directories, add its directory to %s, or give the plugin block a source", PathEnv)
}

// CheckBinary says why the file at path may not run as a plugin: it is
// missing, not a regular file, not executable, writable by others than its
// owner, owned by someone other than root or this process's user, or in a
// directory where others may replace it (one writable by group or others
// without the sticky bit), as OpenSSH's StrictModes judges key files.
func CheckBinary(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("plugin binary %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("plugin binary %s is not executable", path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("plugin binary %s is writable by group or others (mode %v); refusing to run it", path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("plugin binary %s is owned by uid %d, neither root nor this user (uid %d); refusing to run it", path, st.Uid, os.Geteuid())
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("plugin binary %s is in %s, a directory writable by group or others (mode %v) where anyone could replace it; refusing to run it", path, dir, di.Mode().Perm())
	}
	return nil
}

// Candidate is a plugin binary found on the search path.
type Candidate struct {
	Name  string
	Path  string
	Where string
	// Problem says why it may not run; "" when it may.
	Problem string
}

// Discover lists the plugin binaries on the search path, by name. A name
// found in more than one directory is listed once, from the first, as Find
// would use it.
func Discover() []Candidate {
	seen := map[string]bool{}
	var out []Candidate
	for _, d := range SearchPath() {
		entries, err := os.ReadDir(d.Path)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
			if !ok || name == "" || seen[name] {
				continue
			}
			seen[name] = true
			c := Candidate{Name: name, Path: filepath.Join(d.Path, e.Name()), Where: d.Where}
			if err := CheckBinary(c.Path); err != nil {
				c.Problem = err.Error()
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
