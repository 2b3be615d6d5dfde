package config

import (
	"fmt"
	"strings"
	"testing"
)

// target is a target block over forEach, with host.
func target(forEach, host string) string {
	return limitHeader + fmt.Sprintf(`
target "t" {
  for_each = %s
  host     = %s
  port     = 80
  pipeline = pipeline.p
}
`, forEach, host)
}

// TestEvaluationBudget loads files whose evaluation would make more than
// probe can hold or take for ever: each is refused with one diagnostic that
// names the limit, on the expression that went past it. Those refused
// before they run are loaded under the real limits; those that run until
// the budget is spent (a nested for expression must run to find its size),
// under a budget of 100,000 steps, which takes milliseconds where the real
// one takes seconds (the real one is held in cmd/probe's
// TestHostileFiles).
func TestEvaluationBudget(t *testing.T) {
	for _, tc := range []struct {
		name, src, detail string
		line              int
		small             bool // under a budget of 100,000 steps
	}{
		{"setproduct of three range(1000)", target("setproduct(range(1000), range(1000), range(1000))", `"localhost"`),
			"Evaluating setproduct (4,000,003,007 steps) takes the file past 4,000,000 steps", 13, false},
		{"a format wider than the budget", target(`["a"]`, `format("%999999999d", 1)`),
			"Evaluating format (1,000,000,021 bytes) takes the file past 64 MiB of strings", 15, false},
		{"a precision wider than the budget", target(`["a"]`, `format("%.999999999f", 1)`), "Evaluating format (1,000,000,023 bytes)", 15, false},
		{"a join with a huge separator", target(`["a"]`, `join(format("%9999999s", ""), range(1000))`), "Evaluating join (10,009,998,999 bytes)", 15, false},
		{"an indent of a billion", target(`["a"]`, `indent(1000000000, "a\nb")`), "Evaluating indent (2,000,000,003 bytes)", 15, false},
		{"a replace that multiplies", target(`["a"]`, `replace(format("%9999999s", ""), " ", format("%1000s", ""))`), "Evaluating replace (10,010,000,000 bytes)", 15, false},
		{"a template repeated", target(`[for i in range(1000) : tostring(i)]`, `"${format("%9999999s", "")}${each.value}"`),
			"Evaluating a template (9,999,999 bytes) takes the file past 64 MiB", 15, false},
		{"10^9 steps of nested for expressions", target(`toset([for s in flatten([for a in range(1000) : [for b in range(1000) : [for c in range(1000) : "x"]]]) : s])`, `"localhost"`),
			"takes the file past 100,000 steps", 13, true},
		{"for_each instances of a big body", target(`[for i in range(1000) : tostring(i)]`, `element([`+strings.Repeat(`"a", `, 200)+`], 0)`),
			`Evaluating the instances of target "t" (201,000 steps)`, 13, true},
		{"a splat of a splat", target(`[for x in [for i in range(1000): {a = range(1000)}][*].a[*] : "x"]`, `"localhost"`), "takes the file past 100,000 steps", 13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLoader()
			if tc.small {
				l.maxSteps = 100_000
			}
			d := loadOne(t, l, tc.src)
			if d.Summary != "Evaluation limit exceeded" || !strings.Contains(d.Detail, tc.detail) || d.Subject == nil || d.Subject.Start.Line != tc.line {
				t.Errorf("got %s: %s (at %v), want Evaluation limit exceeded: ...%s... on line %d", d.Summary, d.Detail, d.Subject, tc.detail, tc.line)
			}
		})
	}
}

// TestBudgetLinear holds that tolist, toset, a typed variable and a
// function's list argument charge a list of n strings linearly, as they now
// take: under a budget of 20 steps per name, 10,000 names load (go-cty
// unifies the types of a tuple's elements pairwise, and took seconds); the
// same list with one number among the strings still takes quadratic time,
// and is charged so.
func TestBudgetLinear(t *testing.T) {
	const n = 10_000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%q", fmt.Sprintf("t%05d", i))
	}
	list := "[" + strings.Join(names, ", ") + "]"
	src := func(list string) string {
		return fmt.Sprintf(`variable "names" {
  type    = list(string)
  default = %s
}
`, list) + target(`toset(concat(var.names, tolist(`+list+`)))`, `"localhost"`)
	}
	l := testLoader()
	l.maxSteps = 20 * n
	f, diags := l.LoadSource("linear.hcl", []byte(src(list)))
	if diags.HasErrors() {
		t.Fatalf("%v", diags)
	}
	defer f.Close()
	if len(f.Targets) != n {
		t.Errorf("%d targets, want %d", len(f.Targets), n)
	}
	l = testLoader()
	l.maxSteps = 20 * n
	d := loadOne(t, l, src("[1, "+strings.Join(names, ", ")+"]"))
	if d.Summary != "Evaluation limit exceeded" || !strings.Contains(d.Detail, "Evaluating tolist (100,020,001 steps)") {
		t.Errorf("a list of mixed types: %s: %s, want its square charged", d.Summary, d.Detail)
	}
}

// TestJSONDecodeNesting decodes JSON nested past the limit: go-cty's
// decoder recurses once per level, and 2,000,000 levels exhausted its stack.
func TestJSONDecodeNesting(t *testing.T) {
	json := strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000)
	d := loadOne(t, testLoader(), fmt.Sprintf(`variable "j" { default = %q }`, json)+target(`jsondecode(var.j)`, `"localhost"`))
	if d.Summary != "Error in function call" || !strings.Contains(d.Detail, "the JSON nests 200,000 levels deep; probe decodes at most 128") {
		t.Errorf("got %s: %s", d.Summary, d.Detail)
	}
}
