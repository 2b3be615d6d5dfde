plugin "tailscale" { # ERROR: Plugin blocks are not supported here
  source = "./bin/probe-plugin-tailscale"
}
