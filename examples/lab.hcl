# The loopback lab: `probe demo` starts it and runs this file against it, with
# the variables below set to the lab's ports. Healthy targets first, then one
# target for each way things break, so every failure class shows up.
#
# To run it by hand against a lab of your own:
#   probe run examples/lab.hcl -var dns_server=127.0.0.1:5353 -var tls_port=8443 ...

variable "dns_server" {
  default     = "127.0.0.1:5353"
  description = "The lab's authoritative DNS server for probe.test."
}
variable "ca_file" {
  default     = ""
  description = "The lab CA's certificate; empty means the system's roots."
}
variable "tls_port" {
  type    = number
  default = 8443
}
variable "slow_tls_port" {
  type    = number
  default = 8444
}
variable "expired_port" {
  type    = number
  default = 8445
}
variable "wrongname_port" {
  type    = number
  default = 8446
}
variable "untrusted_port" {
  type    = number
  default = 8447
}
variable "reset_port" {
  type    = number
  default = 8448
}
variable "tcp_port" {
  type    = number
  default = 8080
}
variable "refused_port" {
  type    = number
  default = 8081
}

run {
  mode        = "parallel"
  concurrency = 16
  attempts    = 3
  interval    = "50ms"
  timeout     = "2s"
}

resolver "lab" {
  plugin  = "dns-miekg"
  servers = [var.dns_server]
  timeout = "300ms"
  match   = ["*.probe.test", "127.0.0.0/8"]
}

resolver "system" {
  plugin = "dns-system"
}

dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "tls" {
  plugin  = "tls"
  ca_file = var.ca_file
  alpn    = ["h2", "http/1.1"]
}

pipeline "https" {
  resolvers  = [resolver.lab, resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

pipeline "tcp" {
  resolvers = [resolver.lab, resolver.system]
  dialer    = dialer.tcp
}

target "api" {
  host     = "api.probe.test"
  port     = var.tls_port
  pipeline = pipeline.https
}

target "slow-dns" {
  host     = "slow.probe.test" # the lab answers this name after 30 ms
  port     = var.tls_port
  pipeline = pipeline.https
}

target "slow-tls" {
  host     = "slowtls.probe.test" # this server holds its first flight 40 ms
  port     = var.slow_tls_port
  pipeline = pipeline.https
}

target "tcp" {
  host     = "tcp.probe.test"
  port     = var.tcp_port
  pipeline = pipeline.tcp
}

target "broken" {
  for_each = {
    nxdomain  = { host = "nope.probe.test", port = var.tls_port }
    servfail  = { host = "servfail.probe.test", port = var.tls_port }
    silent    = { host = "silent.probe.test", port = var.tls_port }
    expired   = { host = "expired.probe.test", port = var.expired_port }
    wrongname = { host = "wrongname.probe.test", port = var.wrongname_port }
    untrusted = { host = "untrusted.probe.test", port = var.untrusted_port }
    reset     = { host = "reset.probe.test", port = var.reset_port }
  }
  host     = each.value.host
  port     = each.value.port
  pipeline = pipeline.https
  attempts = 1
}

target "refused" {
  host     = "127.0.0.1"
  port     = var.refused_port
  pipeline = pipeline.tcp
  attempts = 1
}
