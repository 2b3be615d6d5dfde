package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The secrets of TestNoOutputShowsASecret: a token with characters that
// every encoding changes (a space, a slash, a quote, a plus, an ampersand,
// a non-ASCII letter), and the label of a host.
const (
	redactToken = `hunter2 s/3cr"t+é&x`
	redactLabel = "s3cr3t-h0st"
)

// leaks returns the pieces of a secret found in text: the token and the
// label in clear, the token in upper case, and the part of the Basic
// authorization that only the token's bytes determine. Every other form
// (percent-encoded, JSON- or Go-quoted, the urlencode of the token)
// starts with "hunter2".
func leaks(text string) []string {
	auth := base64.StdEncoding.EncodeToString([]byte("user:" + redactToken))
	var found []string
	for _, s := range []string{"hunter2", "HUNTER2", redactLabel, "3cr3t", auth[8 : len(auth)-4]} {
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

// echoServer answers /echo/ with a redirect whose Location repeats what
// the request carried, each as the server saw it: the request URI
// (percent-encoded path, the query as sent), the headers (the upper-cased
// token, the Basic authorization), the decoded path as JSON, the Host.
func echoServer(t *testing.T) uint16 {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, _ := json.Marshal(r.URL.Path)
		w.Header().Set("Location", "/login?uri="+r.RequestURI+"&tok="+r.Header.Get("X-Token")+
			"&auth="+r.Header.Get("Authorization")+"&json="+string(path)+"&host="+r.Host)
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).AddrPort().Port()
}

// redactFiles writes the pipeline file and the variable file of the
// secrets to a directory and returns it. The secrets go to a host (a
// for_each key, and a name derived from the label), an http path (as it
// is, and urlencoded in the query), headers (upper-cased, and in a Basic
// authorization), all of them values derived from a sensitive variable.
func redactFiles(t *testing.T, port uint16) string {
	testLab.DNS.AddAddr(redactLabel, netip.MustParseAddr("127.0.0.1"))
	dir := t.TempDir()
	src := fmt.Sprintf(`
variable "token" { sensitive = true }
variable "label" { sensitive = true }

schedule { every = "300ms" }

# Ad-hoc targets on loopback are allowed: what refuses the one below is
# that its pipeline holds a sensitive value.
serve {
  adhoc { allow = ["127.0.0.1:*"] }
}

resolver "lab" {
  plugin  = "dns-miekg"
  servers = [%q]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "echo" {
  plugin        = "http"
  path          = "/echo/${var.token}?q=${urlencode(var.token)}"
  headers       = { "X-Token" = upper(var.token), Authorization = "Basic ${base64encode("user:${var.token}")}" }
  expect_status = [200]
}

pipeline "echo" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.echo]
}

target "echo" {
  for_each = toset([var.label])
  host     = "${each.key}.probe.test"
  port     = %[2]d
  pipeline = pipeline.echo
}

target "gone" {
  host     = "${var.label}-gone.probe.test"
  port     = %[2]d
  pipeline = pipeline.echo
}
`, testLab.DNS.Addr, port)
	bad := `
variable "token" { sensitive = true }
variable "label" { sensitive = true }

resolver "lab" {
  plugin  = "dns-miekg"
  servers = ["127.0.0.1:53"]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "echo" {
  plugin = "http"
  path   = "echo-${var.token}"
}

pipeline "echo" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.echo]
}

target "echo" {
  host     = "${var.label}.probe.test"
  port     = 80
  timeout  = "${upper(var.token)}s"
  pipeline = pipeline.echo
}
`
	vars := fmt.Sprintf("token = %s\nlabel = %q\n", strconv.Quote(redactToken), redactLabel)
	for name, text := range map[string]string{"secret.hcl": src, "bad.hcl": bad, "secrets.hcl": vars} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestNoOutputShowsASecret runs a file whose sensitive values, and values
// derived from them, reach a host, an http path and headers, against a
// server that repeats them back in every encoding a request carries them
// in. No output format, no log line of -vv (plugins' lines included, in
// process and isolated), no diagnostic, and no page or log of probe serve
// may show them, in any form; where they were, the outputs say
// (sensitive).
func TestNoOutputShowsASecret(t *testing.T) {
	port := echoServer(t)
	dir := redactFiles(t, port)
	file, vars := filepath.Join(dir, "secret.hcl"), filepath.Join(dir, "secrets.hcl")
	check := func(t *testing.T, what, text string) {
		t.Helper()
		if found := leaks(text); len(found) > 0 {
			t.Errorf("%s shows %q:\n%s", what, found, text)
		}
	}

	// Each output, with every log line.
	outputs := [][]string{{"-o", "table"}, {"-o", "json"}, {"-o", "jsonl"}, {"-o", "waterfall"},
		{"-o", "prometheus"}, {"-o", "json", "--isolate"}}
	for _, args := range outputs {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := probe(t, nil, slices.Concat([]string{"run", file, "-vv", "-var-file", vars}, args)...)
			wantExit(t, r, exitFailed)
			check(t, "stdout", r.stdout)
			check(t, "stderr", r.stderr)
			if n := strings.Count(r.stdout, "(sensitive)"); n == 0 {
				t.Errorf("stdout shows no redaction:\n%s", r.stdout)
			}
			if args[1] != "json" {
				return
			}
			// Where each secret was, in the form the server saw it.
			doc := decodeDoc(t, r.stdout)
			var echo, gone string
			for _, tj := range doc.Targets {
				switch tj.Name {
				case "echo[(sensitive)]":
					if tj.Host != "(sensitive)" { // from each.key: a secret whole
						t.Errorf("echo's host is %q", tj.Host)
					}
					if p := findPhase(tj.Attempts[0], "http"); p != nil {
						echo = fmt.Sprint(p.Attrs["url"], " ", p.Attrs["location"])
					}
				case "gone":
					if tj.Host != "(sensitive)" || tj.Attempts[0].Failure == nil {
						t.Errorf("gone's host is %q, its attempt %+v", tj.Host, tj.Attempts[0])
					} else {
						gone = tj.Attempts[0].Failure.Message
					}
				default:
					t.Errorf("target %q", tj.Name)
				}
			}
			want := regexp.MustCompile(`^http://\(sensitive\):\d+/echo/\(sensitive\)\?q=\(sensitive\) ` +
				`/login\?uri=/echo/\(sensitive\)\?q=\(sensitive\)&tok=\(sensitive\)&auth=\(sensitive\)` +
				`&json="/echo/\(sensitive\)"&host=\(sensitive\):\d+$`)
			if !want.MatchString(echo) {
				t.Errorf("echo's url and location are\n%s\nwant them to match\n%s", echo, want)
			}
			if !strings.Contains(gone, "(sensitive)") {
				t.Errorf("gone failed with %q, which does not name its host redacted", gone)
			}
		})
	}

	// Diagnostics: the plugin quotes the derived path it refuses, the
	// loader the derived duration; each is a secret whole.
	t.Run("diagnostics", func(t *testing.T) {
		for _, cmd := range []string{"validate", "run"} {
			r := probe(t, nil, cmd, filepath.Join(dir, "bad.hcl"), "-vv", "-var-file", vars)
			wantExit(t, r, exitUsage)
			check(t, cmd+"'s stderr", r.stderr)
			check(t, cmd+"'s stdout", r.stdout)
			if n := len(regexp.MustCompile(`got\s+"\(sensitive\)"`).FindAllString(r.stderr, -1)); n != 2 {
				t.Errorf("%s's diagnostics quote %d redacted values, want 2:\n%s", cmd, n, r.stderr)
			}
		}
	})

	// probe serve: its pages, its error answers, its log.
	t.Run("serve", func(t *testing.T) {
		s := startServeWith(t, "secret.hcl", dir, `exec "$0" "$@" -vv -var-file secrets.hcl`)
		base := "http://" + s.addr
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, metrics := get(t, base+"/metrics")
			if strings.Contains(metrics, `probe_scheduled_success{target="echo[(sensitive)]"} 0`) &&
				strings.Contains(metrics, `probe_scheduled_success{target="gone"} 0`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no scheduled metrics of both targets after 20s:\n%s", metrics)
			}
			time.Sleep(100 * time.Millisecond)
		}
		pages := []struct {
			path   string
			status int
			want   string
		}{
			{"/", http.StatusOK, "<!doctype html>"}, // the status page: the file has a schedule
			{"/api/v1/targets", http.StatusOK, `"name":"echo[(sensitive)]"`},
			{"/api/v1/series?target=" + url.QueryEscape("echo[(sensitive)]"), http.StatusOK, `"class":["http.status"`},
			{"/api/v1/latest?target=" + url.QueryEscape("echo[(sensitive)]"), http.StatusOK, `"class":"http.status"`},
			{"/api/v1/latest?target=gone", http.StatusOK, `"class":"dns.nxdomain"`},
			{"/metrics", http.StatusOK, `probe_attempt_failures_total{class="http.status",phase="http",target="echo[(sensitive)]"}`},
			{"/probe?target=" + url.QueryEscape("echo["+redactLabel+"]"), http.StatusOK, `probe_failure{class="http.status",phase="http"} 1`},
			{"/probe?target=gone", http.StatusOK, `probe_success 0`},
			{"/probe?target=" + url.QueryEscape("echo-"+redactLabel), http.StatusBadRequest, `no target named "echo-(sensitive)"`},
			{"/probe?target=127.0.0.1:1&pipeline=echo", http.StatusForbidden, "holds a sensitive value"},
		}
		for _, p := range pages {
			status, body := get(t, base+p.path)
			if status != p.status || !strings.Contains(body, p.want) {
				t.Errorf("%s: %d, want %d with %q:\n%s", p.path, status, p.status, p.want, body)
			}
			check(t, p.path, body)
		}
		check(t, "probe serve's log", s.stderr())
		if !strings.Contains(s.stderr(), `probed: target="echo[(sensitive)]"`) {
			t.Errorf("probe serve's log names no probe of echo:\n%s", s.stderr())
		}
	})
}
