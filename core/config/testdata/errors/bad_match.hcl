resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
  match   = ["10.0.0.0/33"] # ERROR: Invalid match
}
