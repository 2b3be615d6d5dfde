variable "needed" {} # ERROR: No value for required variable
variable "port" {
  type    = number
  default = "eighty" # ERROR: Invalid value for variable
}
variable "needed" {} # ERROR: Duplicate variable
resolver "lab" {
  plugin  = "dns"
  servers = [var.nope] # ERROR: Unsupported attribute
}
