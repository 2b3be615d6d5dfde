# The default targets of the original preconnect design: the services a
# Headscale/Headplane deployment talks to, probed before they are needed.
#
#   probe run examples/infrastructure.hcl
#   PROBE_VAR_api_host=api.internal probe run examples/infrastructure.hcl -o json

variable "api_host" {
  default     = "api.example.com"
  description = "The public API the service calls."
}

run {
  mode     = "parallel"
  attempts = 3
  interval = "200ms"
  timeout  = "5s"
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

# Tailnet hosts go through the tailscale plugin (probe-plugin-tailscale, see
# examples/tailnet.hcl): the local tailscaled confirms the address is a peer,
# and the dial goes through the tailnet.
resolver "tailnet" {
  plugin = "tailscale"
  match  = ["100.64.0.0/10", "fd7a:115c:a1e0::/48", "*.ts.net"]
}

dialer "tailnet" {
  plugin = "tailscale"
}

pipeline "tcp" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}

pipeline "https" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

pipeline "tailnet" {
  resolvers = [resolver.tailnet]
  dialer    = dialer.tailnet
}

target "local" {
  for_each = {
    headscale-api = 8080 # Headscale API
    metrics       = 9090 # metrics
    headplane-ui  = 3000 # Headplane UI
    api-proxy     = 4000 # API proxy
  }
  host     = "localhost"
  port     = each.value
  pipeline = pipeline.tcp
}

target "api" {
  host     = var.api_host
  port     = 443
  pipeline = pipeline.https
}

# A Tailscale CGNAT address: a peer of the local tailscaled's tailnet, or a
# tailscale.not_a_peer failure without any dial.
target "tailscale-headscale" {
  host     = "100.64.0.10"
  port     = 8080
  pipeline = pipeline.tailnet
}
