# The resolvers and dialers of issue 20: DNS over HTTPS, probing through a
# SOCKS5 or HTTP proxy, choosing where a probe leaves from, and client
# certificates with revocation checks.
#
#   probe run examples/resolvers.hcl
#
# Every target here is public; the plugins' READMEs say what each attribute
# does, and their tests run the same blocks against loopback servers.

run {
  attempts = 3
  interval = "1s"
  timeout  = "5s"
}

# DNS over HTTPS (RFC 8484): connect to Quad9's addresses, verify the
# certificate for dns.quad9.net. The second and third attempts reuse the
# HTTPS connection; the resolve phase says so (reused) and, on the first,
# how long the connect and the TLS handshake inside it took.
resolver "quad9_doh" {
  plugin    = "dns-miekg"
  servers   = ["9.9.9.9", "149.112.112.112"]
  transport = "doh"
  url       = "https://dns.quad9.net/dns-query"
  method    = "POST"
  timeout   = "1s"
}

dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "tls" {
  plugin = "tls"
  alpn   = ["h2", "http/1.1"]
}

pipeline "https_via_doh" {
  resolvers  = [resolver.quad9_doh]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "example" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.https_via_doh
}

# Through a SOCKS5 proxy (ssh -D 1080, tor, dante): the connect phase is the
# one to the proxy, the proxy phase the proxy's connect to the target, and
# TLS runs through the tunnel. The proxy resolves the name.
dialer "socks" {
  plugin  = "dial-socks5"
  proxy   = "127.0.0.1:1080"
  resolve = "remote"
  timeout = "3s"
}

# Through an HTTP proxy's CONNECT, with basic authentication; the password
# comes from PROBE_VAR_proxy_password and is shown as (sensitive).
variable "proxy_password" {
  default   = ""
  sensitive = true
}

dialer "office_proxy" {
  plugin   = "dial-http-connect"
  proxy    = "http://127.0.0.1:3128"
  username = "probe"
  password = var.proxy_password
}

pipeline "https_via_socks" {
  resolvers  = [resolver.quad9_doh]
  dialer     = dialer.socks
  handshakes = [handshake.tls]
}

pipeline "https_via_proxy" {
  resolvers  = [resolver.quad9_doh]
  dialer     = dialer.office_proxy
  handshakes = [handshake.tls]
}

target "example_via_socks" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.https_via_socks
}

target "example_via_proxy" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.https_via_proxy
}

# Where a probe leaves from: a source address, a range of source ports that
# the firewall lets through, and the mark a policy rule routes through the
# backup uplink (ip rule add fwmark 7 table backup; needs CAP_NET_ADMIN).
dialer "via_backup" {
  plugin      = "dial-tcp"
  source      = "127.0.0.1"
  source_port = "20000-20099"
  fwmark      = 7
}

pipeline "tcp_via_backup" {
  resolvers = [resolver.quad9_doh]
  dialer    = dialer.via_backup
}

target "example_via_backup" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.tcp_via_backup
}

# Mutual TLS with the client certificate's expiry reported
# (client_cert_days_left), and the server's certificate checked for
# revocation: the stapled OCSP response first, else the responder it names.
variable "client_cert" {
  default     = ""
  description = "PEM file of the client certificate; empty sends none."
}
variable "client_key" {
  default = ""
}

handshake "mtls" {
  plugin     = "tls"
  cert_file  = var.client_cert
  key_file   = var.client_key
  revocation = "ocsp"
}

pipeline "mtls_checked" {
  resolvers  = [resolver.quad9_doh]
  dialer     = dialer.tcp
  handshakes = [handshake.mtls]
}

target "example_revocation" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.mtls_checked
}

# Targets from a list someone else maintains, in Prometheus's file_sd
# format (targets.json, next to this file): probe serve loads this file
# again when the list changes. The production ones only, resolved over DoH.
target "listed" {
  for_each = { for t in file_sd("targets.json") : t.address => t if lookup(t.labels, "env", "") == "prod" }
  host     = each.value.host
  port     = each.value.port
  pipeline = pipeline.https_via_doh
}

# Targets one a line in a file (fleet.txt, next to this file): a list as
# long as you like, a million hosts say. probe run reads it as it goes and,
# with -o jsonl, holds nothing per target:
#
#   probe run examples/resolvers.hcl -o jsonl > attempts.jsonl
target "fleet" {
  targets_file = "fleet.txt"
  port         = 443 # for the lines that give none
  pipeline     = pipeline.https_via_doh
}
