# More of the network than HTTPS (issue 17), each protocol a built-in plugin
# (plugins/*/README.md): ICMP echo, gRPC health, QUIC and HTTP/3, a DNS
# server over UDP (a raw query, then a SOA and an MX question), mail servers' STARTTLS, PostgreSQL's SSLRequest and an
# SSH host key.
#
#   probe run examples/protocols.hcl
#   probe run examples/protocols.hcl -var mail_host=mail.internal -var bastion_fingerprint=SHA256:...
#   probe test 192.0.2.1 1 icmp

variable "dns_server" {
  default     = "9.9.9.9"
  description = "A DNS server that answers over UDP."
}

variable "mail_host" {
  default     = "mail.example.com"
  description = "An MTA with submission (587), IMAP (143) and POP3 (110)."
}

variable "db_host" {
  default     = "db.example.com"
  description = "A PostgreSQL server with TLS on."
}

variable "bastion_host" {
  default     = "bastion.example.com"
  description = "An SSH server."
}

variable "bastion_fingerprint" {
  # `ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -` prints it.
  default     = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
  description = "The SHA256 fingerprint of the bastion's Ed25519 host key."
}

run {
  mode     = "parallel"
  attempts = 3
  interval = "1s"
  timeout  = "5s"
}

resolver "system" {
  plugin = "dns-system"
}

# icmp: ping, five echo requests per attempt. The dialer makes no
# connection: a pipeline with it has no handshakes.
dialer "ping" {
  plugin   = "icmp"
  count    = 5
  interval = "200ms"
}

pipeline "ping" {
  resolvers = [resolver.system]
  dialer    = dialer.ping
}

target "gateway" {
  host     = "192.0.2.1"
  port     = 1 # every target has a port; icmp does not use it
  pipeline = pipeline.ping
}

# grpc-health: grpc.health.v1.Health/Check over the TLS connection (ALPN
# h2, as gRPC servers expect), SERVING expected.
dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "h2" {
  plugin = "tls"
  alpn   = ["h2"]
}

handshake "orders_health" {
  plugin  = "grpc-health"
  service = "orders.v1.Orders"
  timeout = "2s"
}

pipeline "grpc" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.h2, handshake.orders_health]
}

target "orders" {
  host     = "orders.example.com"
  port     = 443
  pipeline = pipeline.grpc
}

# quic and http3: the QUIC handshake (transport and TLS together) as one
# phase, then a GET over HTTP/3 on that connection. Resumes with 0-RTT
# after a target's first attempt.
dialer "quic" {
  plugin   = "quic"
  zero_rtt = true
}

handshake "h3" {
  plugin        = "http3"
  path          = "/"
  expect_status = [200]
}

pipeline "h3" {
  resolvers  = [resolver.system]
  dialer     = dialer.quic
  handshakes = [handshake.h3]
}

target "site_h3" {
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.h3
}


# A connected UDP socket: udp-payload's datagram goes to the target alone,
# and an ICMP port unreachable comes back as udp.refused.
dialer "udp" {
  plugin = "dial-udp"
}

# A DNS query for example.com's A record (ID 0x1234, recursion desired);
# the reply must carry the ID and the response bit. A closed port is
# udp.refused, a dropped datagram udp.timeout.
handshake "dns_query" {
  plugin      = "udp-payload"
  payload_hex = "1234 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001"
  expect      = "^\\x12\\x34[\\x80-\\xff]"
  timeout     = "1s"
}

# The same DNS server asked as a DNS engineer asks it (plugins/dns-miekg,
# "The dialer"): example.com's SOA, whose serial the dns phase reports,
# and its MX, checked against a regexp; the exchange is the whole probe.
dialer "dns_soa" {
  plugin     = "dns-miekg"
  query_name = "example.com"
  query_type = "SOA"
}

dialer "dns_mx" {
  plugin              = "dns-miekg"
  query_name          = "example.com"
  query_type          = "MX"
  transport           = "tcp"
  validate_answer_rrs = { fail_if_none_matches_regexp = ["\\tMX\\t"] }
}

# SMTP up to STARTTLS's 220, then TLS: the certificate is checked for the
# mail host's name, as for HTTPS.
handshake "smtp_starttls" {
  plugin    = "starttls"
  protocol  = "smtp"
  ehlo_name = "probe.example.com"
}

handshake "imap_starttls" {
  plugin   = "starttls"
  protocol = "imap"
}

handshake "pop3_stls" {
  plugin   = "starttls"
  protocol = "pop3"
}

# PostgreSQL's SSLRequest: N (TLS off) fails as starttls.unsupported.
handshake "pg_ssl" {
  plugin   = "starttls"
  protocol = "postgres"
  timeout  = "1s"
}

handshake "tls" {
  plugin = "tls"
}

# The bastion's host key, pinned: another key fails as
# ssh.host_key_mismatch. No authentication is attempted.
handshake "bastion_key" {
  plugin               = "ssh"
  host_key_fingerprint = var.bastion_fingerprint
  host_key_algorithms  = ["ssh-ed25519"]
}

pipeline "dns_udp" {
  resolvers  = [resolver.system]
  dialer     = dialer.udp
  handshakes = [handshake.dns_query]
}

pipeline "smtp" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.smtp_starttls, handshake.tls]
}

pipeline "imap" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.imap_starttls, handshake.tls]
}

pipeline "pop3" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.pop3_stls, handshake.tls]
}

pipeline "postgres" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.pg_ssl, handshake.tls]
}

pipeline "ssh" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.bastion_key]
}

pipeline "dns_soa" {
  resolvers = [resolver.system]
  dialer    = dialer.dns_soa
}

pipeline "dns_mx" {
  resolvers = [resolver.system]
  dialer    = dialer.dns_mx
}

target "dns" {
  host     = var.dns_server
  port     = 53
  pipeline = pipeline.dns_udp
}

target "dns_soa" {
  host     = var.dns_server
  port     = 53
  pipeline = pipeline.dns_soa
}

target "dns_mx" {
  host     = var.dns_server
  port     = 53
  pipeline = pipeline.dns_mx
}

target "submission" {
  host     = var.mail_host
  port     = 587
  pipeline = pipeline.smtp
}

target "imap" {
  host     = var.mail_host
  port     = 143
  pipeline = pipeline.imap
}

target "pop3" {
  host     = var.mail_host
  port     = 110
  pipeline = pipeline.pop3
}

target "db" {
  host     = var.db_host
  port     = 5432
  pipeline = pipeline.postgres
}

target "bastion" {
  host     = var.bastion_host
  port     = 22
  pipeline = pipeline.ssh
}
