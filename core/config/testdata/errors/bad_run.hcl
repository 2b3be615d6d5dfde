run {
  mode        = "random" # ERROR: Invalid run mode
  concurrency = 0 # ERROR: Invalid number
  attempts    = 1.5 # ERROR: Invalid number
  interval    = "soon" # ERROR: Invalid duration
  timeout     = "0s" # ERROR: Invalid duration
  retries     = 3 # ERROR: Unsupported argument
}
