//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab/netlab"
)

// TestFleetNetlab is a fleet of three vantage points at 5, 20 and 50 ms one
// way from the same TLS server: three network namespaces joined to the far
// side by delay links of their own (netlab.Star), each running `probe serve
// --vantage` on a schedule, and one real Prometheus, on the far side,
// scraping them through file service discovery with examples/fleet's
// prometheus.yml and rules.yml (every 1s instead of 15s, alerts after 1s
// instead of minutes). The connect phase by vantage is three series at
// twice each delay, within 1 ms; cutting one vantage point's link makes it
// `up == 0` and ProbeVantagePointDown, never
// ProbeTargetDownFromMostVantagePoints; stopping the server fires it.
func TestFleetNetlab(t *testing.T) {
	t.Parallel()
	netlab.Require(t)
	delays := []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond}
	star, err := netlab.StartStar(delays...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := star.Close(); err != nil {
			t.Error(err)
		}
	})
	far, err := star.StartLab()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := far.Close(); err != nil {
			t.Error(err)
		}
	})

	file := writeFile(t, "fleet.hcl", fmt.Sprintf(`
run {
  timeout = "800ms"
}
schedule {
  every = "1s"
}
resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }
handshake "tls" {
  plugin  = "tls"
  ca_file = %q
}
pipeline "tls" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}
target "far" {
  host     = %q
  port     = 443
  pipeline = pipeline.tls
}
`, far.CAFile, netlab.FarAddr))
	var scrape []string
	vantageDelay := map[string]time.Duration{}
	for i, delay := range delays {
		vantage := fmt.Sprintf("near-%dms", delay.Milliseconds())
		vantageDelay[vantage] = delay
		listen := fmt.Sprintf("%s:9115", netlab.SpokeAddr(i))
		scrape = append(scrape, listen)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, probeBin, "serve", file, "--listen", listen, "--vantage", vantage)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		// Real-time, as the accuracy tests run probe: what it measures is the
		// link, not the shared machine's scheduling.
		if err := star.Nears[i].StartRealTime(cmd); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("probe serve --vantage %s:\n%s", vantage, stderr.String())
			}
		})
	}

	// The example's Prometheus, on the far side: it reaches each vantage
	// point through that one's link, so a cut link is a vantage point down.
	config := readFleet(t, "prometheus.yml")
	rules := readFleet(t, "rules.yml")
	for _, r := range []struct {
		text *string
		old  string
		new  string
	}{
		{&config, "  scrape_interval: 15s\n", "  scrape_interval: 1s\n  scrape_timeout: 900ms\n"},
		{&config, "  evaluation_interval: 15s\n", "  evaluation_interval: 1s\n"},
		{&rules, "        for: 1m\n", "        for: 1s\n"},
		{&rules, "        for: 5m\n", "        for: 1s\n"},
	} {
		if !strings.Contains(*r.text, r.old) {
			t.Fatalf("examples/fleet no longer has %q; update this test", r.old)
		}
		*r.text = strings.ReplaceAll(*r.text, r.old, r.new)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: star.Far.DialContext}}
	prom := startPrometheusWith(t, config, map[string]string{
		"rules.yml":              rules,
		"vantage-points/lab.yml": fmt.Sprintf("- targets: [%s]\n", strings.Join(scrape, ", ")),
	}, "127.0.0.1:9090", star.Far.Start, client)

	// Three series of the connect phase by vantage, each at twice its delay:
	// the latest attempts' (the shared machine's load delays some packets of
	// the link, never hastens one: Prometheus is asked until an instant
	// where no vantage point's latest connect was disturbed), and the
	// example's recording rule, their mean, never below.
	within := func(s []sample) bool {
		if len(s) != len(delays) {
			return false
		}
		for _, x := range s {
			d, ok := vantageDelay[x.labels["vantage"]]
			if !ok || math.Abs(x.value-(2*d).Seconds()) > 0.001 {
				return false
			}
		}
		return true
	}
	latest := prom.until(`probe_scheduled_phase_duration_seconds{target="far", phase="connect"}`,
		"three vantage points at 2·delay within 1ms", within)
	mean := prom.until(`target_vantage_phase:probe_attempt_phase_duration_seconds:mean5m{target="far", phase="connect"}`,
		"three means", func(s []sample) bool {
			return len(s) == len(delays) && !slices.ContainsFunc(s, func(x sample) bool { return math.IsNaN(x.value) })
		})
	for _, x := range latest {
		t.Logf("connect from %s: %.3f ms (2·delay %v)", x.labels["vantage"], x.value*1000, 2*vantageDelay[x.labels["vantage"]])
	}
	for _, x := range mean {
		d := vantageDelay[x.labels["vantage"]]
		if x.value < (2*d).Seconds()-0.001 {
			t.Errorf("the mean connect from %s is %.3f ms, below 2·delay %v", x.labels["vantage"], x.value*1000, 2*d)
		}
		t.Logf("mean connect from %s: %.3f ms", x.labels["vantage"], x.value*1000)
	}

	// One vantage point loses its network: it is down, it does not vote, and
	// the target does not alert.
	cut := scrape[1]
	star.Cut(1, true)
	prom.until(fmt.Sprintf(`ALERTS{alertname="ProbeVantagePointDown", alertstate="firing", instance=%q}`, cut),
		"the cut vantage point alerted down", func(s []sample) bool { return len(s) == 1 })
	prom.until(`target:probe_vantage_points:count{target="far"}`, "two vantage points voting",
		func(s []sample) bool { return len(s) == 1 && s[0].value == 2 })
	for range 4 { // four evaluations
		if s := prom.query(`ALERTS{alertname="ProbeTargetDownFromMostVantagePoints"}`); len(s) > 0 {
			t.Fatalf("one vantage point cut off, yet %v", s)
		}
		time.Sleep(time.Second)
	}
	star.Cut(1, false)
	prom.until(`target:probe_vantage_points:count{target="far"}`, "three vantage points voting again",
		func(s []sample) bool { return len(s) == 1 && s[0].value == 3 })

	// The server stops: every vantage point sees the target fail, and it
	// alerts.
	if err := far.TLS.Close(); err != nil {
		t.Fatal(err)
	}
	far.TLS = nil // closed
	prom.until(`ALERTS{alertname="ProbeTargetDownFromMostVantagePoints", alertstate="firing", target="far"}`,
		"the target alerted", func(s []sample) bool { return len(s) == 1 })
	if s := prom.query(`target:probe_vantage_points_failing:count{target="far"}`); len(s) != 1 || s[0].value != 3 {
		t.Errorf("the server stopped: %v vantage points failing, want 3", s)
	}
	t.Logf("link lateness: %+v", star.Lateness())
}

// readFleet reads a file of examples/fleet.
func readFleet(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fleetDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
