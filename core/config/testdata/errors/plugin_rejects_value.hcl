resolver "lab" {
  plugin    = "dns"
  servers   = ["127.0.0.1:53"]
  transport = "carrier-pigeon" # ERROR: Invalid transport
}
