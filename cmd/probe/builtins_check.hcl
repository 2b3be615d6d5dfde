# How `probe plugins check --isolate` checks the built-in plugins, served by
# probe itself out of process: a check file (docs/plugins.md, "Checking a
# plugin binary"). lab.dns and lab.ca_file are the check's own DNS server
# (zone probe.test) and the CA of its TLS server.

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

handshake "tls" {
  server = "tls"
  config = { ca_file = lab.ca_file }
  reject = { alpn = [""] }
}

handshake "http" {
  server = "http"
  reject = { method = "GE T" }
}
