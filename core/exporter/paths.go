package exporter

import (
	"path/filepath"
	"regexp"
)

// absPath matches an absolute path of two components or more, as a load's
// diagnostics may name one (a -var-file, the directories searched for a
// plugin binary), with the character before it: not ~ nor part of a word.
var absPath = regexp.MustCompile(`(?:^|[\s"'(=,])/[^\s"'(),;:/]+(?:/[^\s"'(),;:/]*)+`)

// basePaths replaces every absolute path in msg by its base name: where
// the server keeps its files is not an answer's business.
func basePaths(msg string) string {
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		if m[0] == '/' {
			return filepath.Base(m)
		}
		return m[:1] + filepath.Base(m[1:])
	})
}
