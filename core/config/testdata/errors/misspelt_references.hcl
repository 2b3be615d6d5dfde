# Every misspelt reference gets "Did you mean" (TestDidYouMean).
variable "port" { default = 443 }
run { mode = "paralel" } # ERROR: Invalid run mode
resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }
handshake "tls" { plugin = "tls" }
pipeline "https" {
  resolvers  = [resolvr.lab] # ERROR: Invalid reference
  dialer     = dialer.tpc # ERROR: Reference to undeclared dialer
  handshakes = [handshake.tsl] # ERROR: Reference to undeclared handshake
}
target "a" {
  host     = "127.0.0.1"
  port     = var.prot # ERROR: Unsupported attribute
  pipeline = pipeline.htps # ERROR: Reference to undeclared pipeline
}
target "b" {
  for_each = { x = 1 }
  host     = "127.0.0.1"
  port     = each.vaule # ERROR: Unsupported attribute
  pipeline = pipline.https # ERROR: Invalid reference
}
