# Twenty URL paths of one site, each its own target with its own request,
# from one list: for_each on the http handshake, the pipeline and the target.
#
#   probe run examples/paths.hcl -var site=www.example.org
#   probe run examples/paths.hcl -var 'paths=["/", "/healthz"]'
#
# Each path is a target named after it, page[/healthz], probed with the
# pipeline page[/healthz], whose http phase requests that path: a path that
# answers 404 fails in http with http.status, the others are unaffected.

variable "site" {
  default     = "www.example.com"
  description = "The site's host name (or IP address)."
}
variable "port" {
  type    = number
  default = 443
}
variable "ca_file" {
  default     = ""
  description = "The CA certificates to trust; empty means the system's roots."
}
variable "paths" {
  type    = list(string)
  default = [
    "/", "/about", "/blog", "/contact", "/pricing",
    "/docs", "/docs/getting-started", "/login", "/signup", "/search?q=probe",
    "/healthz", "/readyz", "/status", "/api/v1/status", "/api/v1/version",
    "/robots.txt", "/sitemap.xml", "/favicon.ico", "/terms", "/privacy",
  ]
}

run {
  concurrency = 4 # one site: a few requests at a time
}

resolver "system" {
  plugin = "dns-system"
}

dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "tls" {
  plugin  = "tls"
  ca_file = var.ca_file
  alpn    = ["h2", "http/1.1"]
}

handshake "page" {
  for_each = toset(var.paths)
  plugin   = "http"
  path     = each.value
}

pipeline "page" {
  for_each   = toset(var.paths)
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.page[each.key]]
}

target "page" {
  for_each = toset(var.paths)
  host     = var.site
  port     = var.port
  pipeline = pipeline.page[each.key]
}
