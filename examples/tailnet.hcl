# Hosts on a tailnet, through the tailscale plugin: its resolver answers
# MagicDNS names and checks tailnet addresses against the peer list, and its
# dialer reaches peers through the tailnet. The plugin is its own binary: put
# probe-plugin-tailscale next to probe, in ~/.probe/plugins or on
# PROBE_PLUGIN_PATH (plugins/tailscale/README.md).
#
#   probe run examples/tailnet.hcl -var tailnet=example-tailnet.ts.net
#   TS_AUTHKEY=tskey-auth-... probe run examples/tailnet.hcl
#
# A host that is not a peer fails as tailscale.not_a_peer, an offline peer
# as tailscale.offline; neither is ever dialed.

variable "tailnet" {
  default     = "example-tailnet.ts.net"
  description = "The tailnet's MagicDNS suffix (Headscale's base_domain)."
}

plugin "tailscale" {
  # The plugin gets none of probe's environment but a few basics and what is
  # listed here: the auth key with which the embedded node joins.
  env = ["TS_AUTHKEY"]
}

run {
  mode     = "parallel"
  attempts = 3
  interval = "200ms"
  timeout  = "5s"
}

# Through the local tailscaled's LocalAPI. With tailscaled on a TUN device
# the dialer makes a plain TCP connect; in userspace networking it dials
# through tailscaled, and the connect phase says proxied = true.
resolver "tailnet" {
  plugin = "tailscale"
  ping   = true # a disco ping after resolving: latency, direct or relayed
  # The core routes a host to the first resolver whose match fits; short
  # names have no dot to match on, so they are listed.
  match = ["100.64.0.0/10", "fd7a:115c:a1e0::/48", "*.ts.net", "*.${var.tailnet}", "headscale", "grafana"]
}

dialer "tailnet" {
  plugin = "tailscale"
}

# An embedded node that joins the tailnet itself with the key in TS_AUTHKEY,
# for a machine without tailscaled. Ephemeral: it leaves the tailnet soon
# after probe exits.
resolver "embedded" {
  plugin    = "tailscale"
  backend   = "tsnet"
  hostname  = "probe"
  ephemeral = true
}

dialer "embedded" {
  plugin    = "tailscale"
  backend   = "tsnet"
  hostname  = "probe"
  ephemeral = true
}

handshake "http" {
  plugin = "http"
  path   = "/health"
}

pipeline "tailnet" {
  resolvers  = [resolver.tailnet]
  dialer     = dialer.tailnet
  handshakes = [handshake.http]
}

pipeline "embedded" {
  resolvers  = [resolver.embedded]
  dialer     = dialer.embedded
  handshakes = [handshake.http]
}

target "headscale-by-address" {
  host     = "100.64.0.10"
  port     = 8080
  pipeline = pipeline.tailnet
}

target "headscale-by-name" {
  host     = "headscale.${var.tailnet}"
  port     = 8080
  pipeline = pipeline.tailnet
}

target "grafana" {
  host     = "grafana" # a short MagicDNS name
  port     = 3000
  pipeline = pipeline.tailnet
}

target "grafana-embedded" {
  host     = "grafana"
  port     = 3000
  pipeline = pipeline.embedded
}
