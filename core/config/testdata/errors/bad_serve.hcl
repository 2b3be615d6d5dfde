serve {
  adhoc {
    allow = [
      "10.0.0.0/33", # ERROR: Invalid ad-hoc allow entry
      "127.0.0.1:99999", # ERROR: Invalid ad-hoc allow entry
      "[a", # ERROR: Invalid ad-hoc allow entry
      "127.0.0.1:*",
    ]
  }
  adhoc { # ERROR: Duplicate adhoc block
    allow = ["127.0.0.1:1"]
  }
  adhok {} # ERROR: Unsupported block type
}
serve {} # ERROR: Duplicate serve block
