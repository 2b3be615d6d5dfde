# HTTPS health checks served to Prometheus, as blackbox_exporter would, with
# every phase measured and the targets probed every 15 seconds on their own:
#
#   probe serve examples/exporter.hcl
#   curl 'http://127.0.0.1:9115/probe?target=status'
#   curl 'http://127.0.0.1:9115/probe?target=example.org:443&pipeline=https'   # allowed by serve.adhoc
#   curl http://127.0.0.1:9115/metrics      # histograms of the scheduled probes
#   open http://127.0.0.1:9115/             # the status page of the scheduled probes
#   curl http://127.0.0.1:9115/api/v1/targets
#
# The same file once, for node_exporter's textfile collector:
#
#   probe run examples/exporter.hcl -o prometheus > probe.prom

run {
  timeout = "5s"
}

schedule {
  every           = "15s"
  retain          = "24h" # the status page's history, in memory: about 28 KB per target
  retain_attempts = "1h"  # of it, every attempt; the older ones per 5-minute bucket
}

# /probe?target=HOST:PORT&pipeline=NAME probes the file's own targets and
# what this list allows, nothing else (403).
serve {
  adhoc {
    allow = ["*.example.org:443", "example.org:443", "10.0.0.0/8"]
  }
}

resolver "system" {
  plugin = "dns-system"
}

dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "tls" {
  plugin = "tls"
  alpn   = ["h2", "http/1.1"]
}

handshake "get" {
  plugin = "http"
}

handshake "health" {
  plugin        = "http"
  path          = "/healthz"
  headers       = { Accept = "application/json" }
  expect_status = [200, "3xx"]
  expect_body   = "\"status\":\\s*\"ok\""
}

pipeline "https" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.get]
}

pipeline "health" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.health]
}

pipeline "http" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.get]
}

target "status" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.https
}

target "api" {
  host     = "api.example.com"
  port     = 443
  pipeline = pipeline.health
}

target "plain" {
  for_each = toset(["example.com", "example.net"])
  host     = each.value
  port     = 80
  pipeline = pipeline.http
}
