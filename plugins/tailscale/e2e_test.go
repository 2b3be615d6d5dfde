package tailscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pipelineHCL is the file TestProbeBinary runs: both backends, targets by
// address, FQDN and short name, and two that must fail before any dial.
const pipelineHCL = `
plugin "tailscale" {
  source = %q
  env    = ["TS_AUTHKEY"] # for the tsnet backend
}

run {
  attempts = 2
  interval = "50ms"
  timeout  = "10s"
}

resolver "tailnet" {
  plugin = "tailscale"
  socket = %[2]q
  ping   = true
  match  = ["100.64.0.0/10", "fd7a:115c:a1e0::/48", "*.ts.net", "web", "gone"]
}

dialer "tailnet" {
  plugin = "tailscale"
  socket = %[2]q
}

resolver "embedded" {
  plugin      = "tailscale"
  backend     = "tsnet"
  control_url = %[3]q
  state_dir   = %[4]q
  hostname    = "probe-e2e"
  ephemeral   = true
}

dialer "embedded" {
  plugin      = "tailscale"
  backend     = "tsnet"
  control_url = %[3]q
  state_dir   = %[4]q
  hostname    = "probe-e2e"
  ephemeral   = true
}

handshake "http" {
  plugin      = "http"
  expect_body = "^web$"
}

pipeline "local" {
  resolvers  = [resolver.tailnet]
  dialer     = dialer.tailnet
  handshakes = [handshake.http]
}

pipeline "embedded" {
  resolvers  = [resolver.embedded]
  dialer     = dialer.embedded
  handshakes = [handshake.http]
}

target "by-address" {
  host     = %[5]q
  port     = 80
  pipeline = pipeline.local
}

target "by-fqdn" {
  host     = "web.%[6]s"
  port     = 80
  pipeline = pipeline.local
}

target "by-short-name" {
  host     = "web"
  port     = 80
  pipeline = pipeline.local
}

target "embedded" {
  host     = "web"
  port     = 80
  pipeline = pipeline.embedded
}

target "not-a-peer" {
  host     = %[7]q
  port     = 80
  pipeline = pipeline.local
}

target "offline" {
  host     = "gone"
  port     = 80
  pipeline = pipeline.local
}
`

// report is the part of probe's JSON output the test reads.
type report struct {
	Targets []struct {
		Name string
		OK   bool
		// Facts are the attributes of a phase the same in every attempt,
		// left out of each attempt's attrs.
		Facts    map[string]map[string]any
		Attempts []struct {
			OK         bool
			TotalMS    float64 `json:"total_ms"`
			OverheadMS float64 `json:"overhead_ms"`
			Phases     []struct {
				Phase      string
				Plugin     string
				DurationMS float64 `json:"duration_ms"`
				OK         bool
				Attrs      map[string]any
			}
			Failure *struct{ Phase, Class string }
		}
	}
}

// TestProbeBinary runs the real probe binary, which runs
// probe-plugin-tailscale, on a pipeline file against the test tailnet, and
// checks its JSON.
func TestProbeBinary(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tailnet.hcl")
	hcl := fmt.Sprintf(pipelineHCL, filepath.Join(tn.bin, "probe-plugin-tailscale"), tn.socket, tn.controlURL,
		filepath.Join(dir, "state"), tn.web, suffix, trapAddr)
	if err := os.WriteFile(file, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	trapped := tn.trapped.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(tn.bin, "probe"), "run", file, "-o", "json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TS_AUTHKEY=" + authKey}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("probe run: %v, want exit status 1 (two targets fail)\nstderr:\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode the JSON: %v\n%s", err, stdout.String())
	}

	failures := map[string]string{}
	for _, tg := range r.Targets {
		if len(tg.Attempts) != 2 {
			t.Errorf("%s: %d attempts, want 2", tg.Name, len(tg.Attempts))
		}
		for i, a := range tg.Attempts {
			if a.Failure != nil {
				failures[tg.Name] = a.Failure.Phase + " " + a.Failure.Class
				if len(a.Phases) != 1 || a.Phases[0].Phase != "resolve" {
					t.Errorf("%s attempt %d: phases %+v, want only resolve: nothing is dialed", tg.Name, i+1, a.Phases)
				}
				continue
			}
			var names []string
			var sum float64
			for _, p := range a.Phases {
				names = append(names, p.Phase)
				sum += p.DurationMS
				if !p.OK || p.DurationMS <= 0 {
					t.Errorf("%s attempt %d: phase %s ok=%v duration %v ms", tg.Name, i+1, p.Phase, p.OK, p.DurationMS)
				}
			}
			want := []string{"resolve", "ping", "connect", "http"}
			if tg.Name == "embedded" {
				want = []string{"resolve", "connect", "http"}
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("%s attempt %d: phases (-want +got):\n%s", tg.Name, i+1, diff)
				continue
			}
			if math.Abs(sum+a.OverheadMS-a.TotalMS) > 0.01 {
				t.Errorf("%s attempt %d: phases %.3f ms + overhead %.3f ms != total %.3f ms", tg.Name, i+1, sum, a.OverheadMS, a.TotalMS)
			}
			// attr is a phase's attribute, stated in the attempt or in the
			// target's facts.
			attr := func(phase int, key string) any {
				if v, ok := a.Phases[phase].Attrs[key]; ok {
					return v
				}
				return tg.Facts[a.Phases[phase].Phase][key]
			}
			connect := len(a.Phases) - 2
			if a.Phases[connect].Plugin != "tailscale" || attr(connect, "proxied") != true || attr(connect, "peer") != "web" {
				t.Errorf("%s attempt %d: connect by %s with attrs %v and facts %v, want tailscale, proxied, peer web", tg.Name, i+1,
					a.Phases[connect].Plugin, a.Phases[connect].Attrs, tg.Facts["connect"])
			}
			if attr(0, "dns_name") != "web."+suffix {
				t.Errorf("%s attempt %d: resolve attrs %v and facts %v, want dns_name web.%s", tg.Name, i+1, a.Phases[0].Attrs,
					tg.Facts["resolve"], suffix)
			}
		}
	}
	want := map[string]string{"not-a-peer": "resolve " + string(ClassNotAPeer), "offline": "resolve " + string(ClassOffline)}
	if diff := cmp.Diff(want, failures); diff != "" {
		t.Errorf("failures (-want +got):\n%s\nstderr:\n%s", diff, stderr.String())
	}
	if n := tn.trapped.Load() - trapped; n != 0 {
		t.Errorf("%d connections fell through to the host's network", n)
	}
}
