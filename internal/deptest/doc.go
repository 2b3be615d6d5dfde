// Package deptest checks the module's import rules (DESIGN §2).
package deptest
