resolver "lab" {
  plugin = "dns" "extra" # ERROR: Missing newline after argument
}
