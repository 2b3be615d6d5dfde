package pluginhost

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommandRunsTheOpenFile checks that the command runs the file that
// was opened (and would have been pin-checked), not whatever was renamed to
// its path afterwards.
func TestCommandRunsTheOpenFile(t *testing.T) {
	dir := t.TempDir()
	path, other := filepath.Join(dir, "plugin"), filepath.Join(dir, "other")
	for p, word := range map[string]string{path: "checked", other: "swapped"} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+word+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	if err := os.Rename(other, path); err != nil { // after the check, before the start
		t.Fatal(err)
	}
	channel, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer channel.Close()
	cmd := command(exe, path, nil, channel)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if string(out) != "checked\n" {
		t.Errorf("the command ran the file that now has the path: it printed %q, want %q", out, "checked\n")
	}
	if cmd.Args[0] != path {
		t.Errorf("argv[0] %q, want the plugin's path %q", cmd.Args[0], path)
	}
}
