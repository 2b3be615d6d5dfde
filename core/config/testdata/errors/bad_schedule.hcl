schedule {
  every  = "0s" # ERROR: Invalid duration
  jitter = "1s" # ERROR: Unsupported argument
}

schedule { # ERROR: Duplicate schedule block
  every = "15s"
}
