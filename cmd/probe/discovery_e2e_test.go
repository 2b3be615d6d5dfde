package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServeFileSD runs probe serve on a file whose targets come from a
// file_sd list: a new target in the list is served without a restart, and a
// malformed list keeps the last good targets, with the reason in the log
// and the failed reload in /metrics.
func TestServeFileSD(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "sd.hcl", labHeader("1s")+`
pipeline "tls" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "sd" {
  for_each = { for t in file_sd("targets.json") : t.address => t }
  host     = each.value.host
  port     = each.value.port
  pipeline = pipeline.tls
}
`)
	list := filepath.Join(filepath.Dir(file), "targets.json")
	api := fmt.Sprintf("api.probe.test:%d", testLab.TLS.Addr.Port())
	expired := fmt.Sprintf("expired.probe.test:%d", testLab.Expired.Addr.Port())
	writeList := func(data string) {
		t.Helper()
		// Through a rename, as an editor or a config manager writes it.
		tmp := list + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, list); err != nil {
			t.Fatal(err)
		}
	}
	writeList(fmt.Sprintf(`[{"targets": [%q]}]`, api))
	srv := startServe(t, file)
	probe := func(target string) (int, string) {
		return get(t, "http://"+srv.addr+"/probe?target="+url.QueryEscape(target))
	}
	if code, body := probe("sd[" + api + "]"); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Fatalf("sd[%s]: %d\n%s", api, code, body)
	}
	// eventually waits for cond, checked every 100ms, for 10s at most.
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10s; probe serve said:\n%s", what, srv.stderr())
			}
		}
	}

	writeList(fmt.Sprintf(`[{"targets": [%q]}, {"targets": [%q], "labels": {"env": "test"}}]`, api, expired))
	eventually("the new target served", func() bool {
		code, body := probe("sd[" + expired + "]")
		return code == 200 && strings.Contains(body, "probe_success 0")
	})

	writeList(`[{"targets": ["no port here"]}]`)
	eventually("the failed reload in /metrics", func() bool {
		_, body := get(t, "http://"+srv.addr+"/metrics")
		return strings.Contains(body, "probe_exporter_config_last_reload_successful 0")
	})
	if code, body := probe("sd[" + expired + "]"); code != 200 || !strings.Contains(body, "probe_success 0") {
		t.Errorf("after a malformed list, sd[%s]: %d, want the last good file still served\n%s", expired, code, body)
	}
	eventually("the log saying why the list was not taken", func() bool {
		// hclog indents the error's lines behind "|", the diagnostics wrap.
		logs := strings.Join(slices.DeleteFunc(strings.Fields(srv.stderr()), func(f string) bool { return f == "|" }), " ")
		return strings.Contains(logs, `file_sd list targets.json changed`) && strings.Contains(logs, `"no port here" is not host:port`)
	})
}
