package deptest_test

import (
	"testing"

	"github.com/probe-dev/probe/internal/deptest"
)

// TestDependencies checks the rules in every Go file of this module.
func TestDependencies(t *testing.T) {
	deptest.Check(t, "../..")
}
