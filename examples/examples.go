// Package examples holds the example pipeline files, embedded so that
// `probe demo` carries the lab pipeline with it.
package examples

import "embed"

// FS holds every *.hcl file of this directory.
//
//go:embed *.hcl
var FS embed.FS
