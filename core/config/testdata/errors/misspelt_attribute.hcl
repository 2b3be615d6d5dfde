resolver "lab" { # ERROR: Missing required argument
  plugin = "dns"
  servr  = ["127.0.0.1:53"] # ERROR: Unsupported argument
}
