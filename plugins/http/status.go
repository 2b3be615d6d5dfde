package httphandshake

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/probe-dev/probe/core/sdk"
)

// statusRange is an inclusive range of status codes.
type statusRange struct{ lo, hi int }

// defaultStatuses is expect_status when unset: success and redirection.
var defaultStatuses = []statusRange{{200, 399}}

// parseStatuses parses expect_status: codes ("200"), classes ("2xx") and
// ranges ("200-299"), each within 100-599. None means defaultStatuses.
func parseStatuses(specs []string) ([]statusRange, error) {
	if len(specs) == 0 {
		return defaultStatuses, nil
	}
	out := make([]statusRange, 0, len(specs))
	for _, s := range specs {
		r, ok := parseStatus(strings.TrimSpace(s))
		if !ok {
			return nil, sdk.AttrErrorf("expect_status", "Invalid status code",
				"Each expect_status entry must be a code (200), a class (\"2xx\") or a range (\"200-299\") within 100-599, got %q.", s)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseStatus(s string) (statusRange, bool) {
	code := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 100 && n <= 599
	}
	if class, ok := strings.CutSuffix(strings.ToLower(s), "xx"); ok {
		n, err := strconv.Atoi(class)
		return statusRange{n * 100, n*100 + 99}, err == nil && n >= 1 && n <= 5
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		l, okL := code(strings.TrimSpace(lo))
		h, okH := code(strings.TrimSpace(hi))
		return statusRange{l, h}, okL && okH && l <= h
	}
	n, ok := code(s)
	return statusRange{n, n}, ok
}

// accepts reports whether status is in one of ranges.
func accepts(ranges []statusRange, status int) bool {
	for _, r := range ranges {
		if status >= r.lo && status <= r.hi {
			return true
		}
	}
	return false
}

// formatStatuses writes ranges for a failure message: "200, 204, 300-399".
func formatStatuses(ranges []statusRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = strconv.Itoa(r.lo)
		if r.hi != r.lo {
			parts[i] = fmt.Sprintf("%d-%d", r.lo, r.hi)
		}
	}
	return strings.Join(parts, ", ")
}
