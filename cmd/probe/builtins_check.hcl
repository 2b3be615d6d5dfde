# How `probe plugins check --isolate` checks the built-in plugins, served by
# probe itself out of process: a check file (docs/plugins.md, "Checking a
# plugin binary"). lab.dns and lab.ca_file are the check's own DNS server
# (zone probe.test) and the CA of its TLS, SMTP and HTTP/3 servers; lab.socks5_proxy
# and lab.http_proxy the proxies given with --socks5-proxy and --http-proxy.

resolver "dns-miekg" {
  config = { servers = [lab.dns], timeout = "2s" }
  reject = { transport = "carrier-pigeon" }
  want   = ["127.0.0.1"]
}

resolver "dns-system" {
  host   = "127.0.0.1"
  want   = ["127.0.0.1"]
  reject = { network = "ipx" }
  # The system's resolver asks the system's DNS servers, which may not
  # answer where the check runs: no name it must fail to resolve.
  fail_host = ""
}

dialer "dial-tcp" {
  reject = { source = "not-an-address" }
}

dialer "dial-socks5" {
  config = { proxy = lab.socks5_proxy }
  reject = { resolve = "sometimes" }
  via    = lab.socks5_proxy
  skip   = lab.socks5_proxy == "" ? "no SOCKS5 proxy to run it through (--socks5-proxy HOST:PORT)" : null
}

dialer "dial-http-connect" {
  config = { proxy = "http://${lab.http_proxy}" }
  reject = { resolve = "sometimes" }
  via    = lab.http_proxy
  skip   = lab.http_proxy == "" ? "no HTTP proxy to run it through (--http-proxy HOST:PORT)" : null
}

# ICMP echo of 127.0.0.1: the dial is the whole probe, no connection.
dialer "icmp" {
  config = { interval = "10ms" }
  reject = { count = 0 }
}

# dns-miekg's dialer asks the check's DNS server (lab.dns) a question: the
# exchange is the whole probe, no connection.
dialer "dns-miekg" {
  server = "dns"
  config = { query_name = "api.probe.test", query_type = "A", validate_answer_rrs = { fail_if_not_matches_regexp = ["\\t127\\.0\\.0\\.1$"] } }
  reject = { query_type = "MXX" }
}

# QUIC against the check's HTTP/3 server, whose certificate lab.ca_file's CA
# signed; http3 is checked over this dialer's connection, in its process.
dialer "quic" {
  config = { ca_file = lab.ca_file }
  reject = { alpn = [] }
}

handshake "http3" {
  server = "http3"
  reject = { method = "GE T" }
}

handshake "grpc-health" {
  server = "grpc"
  reject = { timeout = "soon" }
}

handshake "tls" {
  server = "tls"
  config = { ca_file = lab.ca_file }
  reject = { alpn = [""] }
}

handshake "http" {
  server = "http"
  reject = { method = "GE T" }
}

# A connected UDP socket, checked against the check's UDP echo server, a
# closed UDP port (port unreachable) and one that never answers.
dialer "dial-udp" {
  server = "udp"
  reject = { source = "not-an-address" }
}

handshake "udp-payload" {
  server = "udp"
  config = { payload = "probe plugins check", expect = "^probe plugins check$" }
  reject = { expect = "(" }
}

handshake "ssh" {
  server = "ssh"
  reject = { timeout = "soon" }
}

# SMTP up to STARTTLS; the TLS after it is the tls handshake's.
handshake "starttls" {
  server = "smtp"
  config = { protocol = "smtp" }
  reject = { protocol = "gopher" }
}
