resolver "lab" { # ERROR: Missing required argument
  plugin = "dns"
}
