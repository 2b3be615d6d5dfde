# The pipeline file of every vantage point of a fleet: each host runs
# `probe serve` on it, named by its own vantage (PROBE_VANTAGE, which the
# systemd unit and the container set), probing the same targets on its own
# schedule; one Prometheus scrapes them all (prometheus.yml) and alerts when
# a target fails from more than half of them (rules.yml). See docs/fleet.md.
#
#   PROBE_VANTAGE=eu-west probe serve examples/fleet/fleet.hcl --listen :9115
#   curl http://127.0.0.1:9115/metrics      # probe_scheduled_success{target,vantage} ...

run {
  timeout = "5s"
}

schedule {
  every = "15s"
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

pipeline "https" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.get]
}

pipeline "tcp" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}

target "www" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.https
}

target "api" {
  host     = "api.example.com"
  port     = 443
  pipeline = pipeline.https
}

target "mail" {
  host     = "mail.example.com"
  port     = 25
  pipeline = pipeline.tcp
}
