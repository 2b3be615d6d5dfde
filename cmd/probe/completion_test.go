package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// TestCompletionScripts prints each shell's script and runs bash's: bash
// asks probe for completions the way it does when Tab is pressed.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for shell, marker := range map[string]string{
		"bash": "# bash completion V2 for probe",
		"zsh":  "#compdef probe",
		"fish": "complete -c probe ",
	} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, "completion", shell)
			wantExit(t, r, exitOK)
			if !strings.Contains(r.stdout, marker) {
				t.Errorf("the %s script lacks %q:\n%.400s", shell, marker, r.stdout)
			}
		})
	}
	r := probe(t, nil, "completion", "tcsh")
	wantExit(t, r, exitUsage)

	script := writeFile(t, "probe.bash", probe(t, nil, "completion", "bash").stdout)
	// The script calls probe by the name typed, from PATH.
	bin := t.TempDir()
	if err := os.Symlink(probeBin, filepath.Join(bin, "probe")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want []string
	}{
		{"probe se", []string{"serve"}},
		{"probe comp", []string{"completion"}},
		{"probe vers", []string{"version"}},
		{"probe completion ", []string{"bash", "zsh", "fish"}},
		{"probe plugins show ", []string{"dial-http-connect", "dial-socks5", "dial-tcp", "dial-udp", "dns-miekg", "dns-system", "grpc-health", "http", "http3", "icmp", "quic", "ssh", "starttls", "tls", "udp-payload"}},
		{"probe plugins show d", []string{"dial-http-connect", "dial-socks5", "dial-tcp", "dial-udp", "dns-miekg", "dns-system"}},
		{"probe test example.com 443 ", []string{"tcp", "http", "https", "icmp", "grpc", "grpcs", "quic", "h3", "ssh", "dns-udp", "smtp", "imap", "pop3", "postgres"}},
		{"probe run pipeline.hcl -o p", []string{"prometheus"}},
		{"probe test example.com 443 --output j", []string{"json", "jsonl"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			// bash-completion's _get_comp_words_by_ref, reduced to what
			// the script needs, for machines without the package; compopt
			// works only while bash itself completes.
			prog := `
_get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
compopt() { :; }
source "$1"
COMP_LINE=$2; COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
__start_probe
printf '%s\n' "${COMPREPLY[@]}"
`
			cmd := exec.Command("bash", "-c", prog, "bash", script, tt.line)
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, strings.Fields(string(out))); diff != "" {
				t.Errorf("completions of %q (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// TestCompleteFiles checks the directives: pipeline files are *.hcl.
func TestCompleteFiles(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"run", ""}, {"validate", ""}, {"serve", ""}} {
		r := probe(t, nil, append([]string{"__complete"}, args...)...)
		wantExit(t, r, exitOK)
		if r.stdout != "hcl\n:8\n" {
			t.Errorf("probe __complete %v = %q, want hcl with FilterFileExt (8)", args, r.stdout)
		}
	}
}

// TestHelp checks that every command says what it does and shows examples.
func TestHelp(t *testing.T) {
	t.Parallel()
	walk(newRoot(), func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Short == "" || c.Example == "" {
			t.Errorf("%s: Short %q, Example %q; want both", c.CommandPath(), c.Short, c.Example)
		}
	})
	r := probe(t, nil, "--help")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Examples:", "  completion ", "  serve ", "  test ", "  run "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("probe --help lacks %q:\n%s", want, r.stdout)
		}
	}
}
