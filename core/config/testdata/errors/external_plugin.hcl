plugin "tailscale" { # ERROR: External plugins are not supported yet
  source = "./bin/probe-plugin-tailscale"
}
