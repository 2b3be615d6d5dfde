package config

import (
	"errors"
	"math"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The limits of what evaluating a file may cost (docs/language.md,
// "Limits"), so that a short file cannot make probe run out of memory or
// run for ever: setproduct(range(1000), range(1000), range(1000)) would make
// a billion elements, three nested for expressions over range(1000) as many
// steps.
const (
	// maxSteps is the most steps evaluating a file may take: a few
	// seconds of work. A step is an element a function, splat
	// or comparison goes through or makes, and an item of a list or object
	// written in a block with for_each (once per instance) or in the body
	// of a for expression (once per element); each element of a for
	// expression costs forStep more, a function call callStep more and one
	// per argument, an instance of a block and a part of a template one.
	maxSteps = 4_000_000
	forStep  = 2
	callStep = 4
	// maxBytes is the most bytes of strings the functions and templates of
	// a file may go through and make.
	maxBytes = 64 << 20
)

// printer writes numbers with thousands separators in diagnostics.
var printer = message.NewPrinter(language.English)

// budget counts what the evaluation of one file has cost, against its
// limits (maxSteps and maxBytes but in tests).
type budget struct {
	steps, bytes       int64
	maxSteps, maxBytes int64
	// err is the first limit exceeded; every later charge fails with it, so
	// that an evaluation past the limit ends at once.
	err *limitError
	// hooks are the functions of the budget's hooks (hookFuncs).
	hooks map[string]function.Function
}

func newBudget(maxSteps, maxBytes int64) *budget {
	b := &budget{maxSteps: maxSteps, maxBytes: maxBytes}
	b.hooks = b.hookFuncs()
	return b
}

// limitError is an evaluation past the budget.
type limitError struct{ detail string }

func (e *limitError) Error() string { return e.detail }

// charge adds steps and bytes to what the evaluation has cost; what names
// the expression that costs them, for the error ("setproduct").
func (b *budget) charge(steps, bytes int64, what string) error {
	if b.err != nil {
		return b.err
	}
	b.steps, b.bytes = addSat(b.steps, steps), addSat(b.bytes, bytes)
	switch {
	case b.steps > b.maxSteps:
		b.err = &limitError{printer.Sprintf("Evaluating %s (%d steps) takes the file past %d steps, the most its evaluation may take: "+
			"about one for each element that its for expressions, splats and functions go through.", what, steps, b.maxSteps)}
	case b.bytes > b.maxBytes:
		b.err = &limitError{printer.Sprintf("Evaluating %s (%d bytes) takes the file past %d MiB of strings, the most its functions and templates may make.",
			what, bytes, b.maxBytes>>20)}
	default:
		return nil
	}
	return b.err
}

// exhausted reports whether the evaluation has gone past the budget.
func (b *budget) exhausted() bool { return b.err != nil }

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// size returns how many elements v holds, at every depth, and how many
// bytes its strings hold. Unknown parts count nothing.
func size(v cty.Value) (elems, bytes int64) {
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() {
		return 0, 0
	}
	switch ty := v.Type(); {
	case ty == cty.String:
		return 0, int64(len(v.AsString()))
	case ty.IsCollectionType() || ty.IsTupleType() || ty.IsObjectType():
		elems = int64(v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			n, b := size(e)
			elems, bytes = addSat(elems, n), addSat(bytes, b)
		}
	}
	return elems, bytes
}

// chargeValue charges the elements and bytes of v, the value of the
// expression at rng, and reports whether the budget allowed them; it
// records the error.
func (d *decoder) chargeValue(v cty.Value, rng hcl.Range, what string) bool {
	n, b := size(v)
	return d.chargeAt(n, b, rng, what)
}

// chargeAt charges steps and bytes for the expression at rng, and reports
// whether the budget allowed them; it records the error.
func (d *decoder) chargeAt(steps, bytes int64, rng hcl.Range, what string) bool {
	if err := d.budget.charge(steps, bytes, what); err != nil {
		if diag := d.limitDiag(err, rng); diag != nil {
			d.diags = append(d.diags, diag)
		}
		return false
	}
	return true
}

// evalStatic evaluates e where no function may be called (a variable's
// default, a -var-file's value, a value given as text), under the budget.
func (d *decoder) evalStatic(e hcl.Expression) (cty.Value, hcl.Diagnostics) {
	if syn, ok := e.(hclsyntax.Expression); ok {
		budgetExprs(syn)
		for _, c := range callsIn(syn) {
			if _, hook := d.budget.hooks[c.Name]; !hook {
				return cty.DynamicVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Function calls not allowed",
					Detail: "Functions may not be called here.", Subject: c.Range().Ptr()}}
			}
		}
	}
	v, diags := e.Value(&hcl.EvalContext{Functions: d.budget.hooks})
	return v, d.limitDiags(diags)
}

// limitDiag returns the diagnostic of err at rng, or nil when the
// evaluation's budget was reported exceeded already: it is once.
func (d *decoder) limitDiag(err error, rng hcl.Range) *hcl.Diagnostic {
	if d.limitReported {
		return nil
	}
	d.limitReported = true
	if rng.Start.Line != rng.End.Line {
		rng.End = rng.Start // the diagnostic shows the lines of its range, and a list may have thousands
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Evaluation limit exceeded", Detail: err.Error(), Subject: rng.Ptr()}
}

// limitDiags rewrites the diagnostics of function calls that failed on the
// budget (HCL's "Error in function call", naming the function) into one
// diagnostic that says which limit was exceeded, and drops the rest: once
// the budget is spent, every call after fails the same way.
func (d *decoder) limitDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	for _, diag := range diags {
		var le *limitError
		if extra, ok := diag.Extra.(hclsyntax.FunctionCallDiagExtra); ok && errors.As(extra.FunctionCallError(), &le) {
			rng := diag.Subject
			if diag.Context != nil {
				rng = diag.Context
			}
			if diag = d.limitDiag(le, *rng); diag == nil {
				continue
			}
		}
		out = append(out, diag)
	}
	return out
}

// Internal functions: the budget's hooks in HCL's own evaluation, put
// around expressions by budgetExprs. Their names are none a file can call.
const (
	forFunc      = "for expression"
	splatFunc    = "splat expression"
	templateFunc = "template part"
	operandFunc  = "compared operand"
)

// hookFuncs returns the functions of the budget's hooks.
func (b *budget) hookFuncs() map[string]function.Function {
	pass := func(what string, cost func(v cty.Value, weight int64) (steps, bytes int64)) function.Function {
		return function.New(&function.Spec{
			Params: []function.Parameter{
				{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true},
				{Name: "weight", Type: cty.Number},
			},
			Type: func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				weight, _ := args[1].AsBigFloat().Int64()
				steps, bytes := cost(args[0], weight)
				if err := b.charge(steps, bytes, what); err != nil {
					return cty.DynamicVal, err
				}
				return args[0], nil
			},
		})
	}
	return map[string]function.Function{
		// A for expression costs, for each element, forStep and the items
		// of the lists and objects written in its body (weight).
		forFunc: pass("a for expression", func(v cty.Value, weight int64) (int64, int64) {
			return mulSat(lengthOf(v), weight), 0
		}),
		splatFunc: pass("a splat", func(v cty.Value, _ int64) (int64, int64) { return lengthOf(v), 0 }),
		templateFunc: pass("a template", func(v cty.Value, _ int64) (int64, int64) {
			_, bytes := size(v)
			return 1, bytes
		}),
		// The operands of == and != and the results of a conditional are
		// compared or unified whole.
		operandFunc: pass("an operand", func(v cty.Value, _ int64) (int64, int64) { return size(v) }),
	}
}

// budgetExprs puts the budget's hooks around the expressions of node whose
// cost HCL's evaluation does not otherwise show: the collection of each for
// expression and splat, each interpolated part of a template, the operands
// of == and != and the results of a conditional.
func budgetExprs(node hclsyntax.Node) {
	_ = hclsyntax.Walk(node, hookWalker{})
}

type hookWalker struct{}

func (hookWalker) Enter(hclsyntax.Node) hcl.Diagnostics { return nil }

// Exit hooks the children of n: they were walked already, so no hook is
// walked.
func (hookWalker) Exit(n hclsyntax.Node) hcl.Diagnostics {
	switch e := n.(type) {
	case *hclsyntax.ForExpr:
		weight := forStep + items(e.KeyExpr) + items(e.ValExpr) + items(e.CondExpr)
		e.CollExpr = hook(forFunc, e.CollExpr, weight)
	case *hclsyntax.SplatExpr:
		e.Source = hook(splatFunc, e.Source, 0)
	case *hclsyntax.TemplateExpr:
		for i, p := range e.Parts {
			if _, literal := p.(*hclsyntax.LiteralValueExpr); !literal {
				e.Parts[i] = hook(templateFunc, p, 0)
			}
		}
	case *hclsyntax.BinaryOpExpr:
		if e.Op == hclsyntax.OpEqual || e.Op == hclsyntax.OpNotEqual {
			e.LHS, e.RHS = hook(operandFunc, e.LHS, 0), hook(operandFunc, e.RHS, 0)
		}
	case *hclsyntax.ConditionalExpr:
		e.TrueResult, e.FalseResult = hook(operandFunc, e.TrueResult, 0), hook(operandFunc, e.FalseResult, 0)
	}
	return nil
}

// hook returns a call of the internal function name on e and weight, with
// e's range; e itself when it is one already (a file parsed twice by one
// loader is hooked twice).
func hook(name string, e hclsyntax.Expression, weight int64) hclsyntax.Expression {
	if c, ok := e.(*hclsyntax.FunctionCallExpr); ok && c.Name == name {
		return e
	}
	rng := e.Range()
	return &hclsyntax.FunctionCallExpr{Name: name, NameRange: rng, OpenParenRange: rng, CloseParenRange: rng,
		Args: []hclsyntax.Expression{e, &hclsyntax.LiteralValueExpr{Val: cty.NumberIntVal(weight), SrcRange: rng}}}
}

// items returns how many items the lists and objects written in node
// have, nil counting none.
func items(node hclsyntax.Node) int64 {
	var n int64
	if node == nil {
		return 0
	}
	_ = hclsyntax.VisitAll(node, func(n2 hclsyntax.Node) hcl.Diagnostics {
		switch e := n2.(type) {
		case *hclsyntax.TupleConsExpr:
			n += int64(len(e.Exprs))
		case *hclsyntax.ObjectConsExpr:
			n += int64(len(e.Items))
		}
		return nil
	})
	return n
}

// callsIn returns the function calls written in node.
func callsIn(node hclsyntax.Node) []*hclsyntax.FunctionCallExpr {
	var calls []*hclsyntax.FunctionCallExpr
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		if c, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			calls = append(calls, c)
		}
		return nil
	})
	return calls
}

// fastConvert converts v to want as convert.Convert does, in time linear
// in v's size, when want is a list, set or map and v a tuple or object
// whose elements convert to one type; ok is false when it cannot. go-cty
// unifies the types of the elements of such a value pairwise, in time
// quadratic in their number: to convert a tuple to any list, and a tuple or
// object to a set or map of any type.
func fastConvert(v cty.Value, want cty.Type) (cty.Value, bool) {
	uv, marks := v.Unmark()
	if !uv.IsKnown() || uv.IsNull() {
		return cty.NilVal, false
	}
	ty := uv.Type()
	toList := (want.IsListType() || want.IsSetType()) && ty.IsTupleType()
	toMap := want.IsMapType() && ty.IsObjectType()
	if !toList && !toMap || uv.LengthInt() == 0 {
		return cty.NilVal, false
	}
	ety := want.ElementType()
	var first cty.Type
	elem := func(e cty.Value) (cty.Value, bool) {
		c, ok := fastConvert(e, ety)
		if !ok {
			var err error
			if c, err = convert.Convert(e, ety); err != nil {
				return cty.NilVal, false
			}
		}
		t := c.Type()
		if t.Equals(cty.DynamicPseudoType) || first != cty.NilType && !t.Equals(first) {
			return cty.NilVal, false
		}
		first = t
		return c, true
	}
	if toMap {
		out := make(map[string]cty.Value, uv.LengthInt())
		for k, e := range uv.AsValueMap() {
			c, ok := elem(e)
			if !ok {
				return cty.NilVal, false
			}
			out[k] = c
		}
		return cty.MapVal(out).WithMarks(marks), true
	}
	out := make([]cty.Value, 0, uv.LengthInt())
	for it := uv.ElementIterator(); it.Next(); {
		_, e := it.Element()
		c, ok := elem(e)
		if !ok {
			return cty.NilVal, false
		}
		out = append(out, c)
	}
	if want.IsSetType() {
		return cty.SetVal(out).WithMarks(marks), true
	}
	return cty.ListVal(out).WithMarks(marks), true
}

// convert converts v to want: in linear time (fastConvert) when it can,
// else by convert.Convert, charging what slowCost says.
func (b *budget) convert(v cty.Value, want cty.Type, what string) (cty.Value, error) {
	if c, ok := fastConvert(v, want); ok {
		return c, nil
	}
	if err := b.charge(slowCost(v, want), 0, what); err != nil {
		return cty.DynamicVal, err
	}
	return convert.Convert(v, want)
}

// slowCost returns what convert.Convert takes to convert v to want, which
// fastConvert could not: the square of v's size when go-cty unifies the
// types of its elements, nothing more than its size otherwise.
func slowCost(v cty.Value, want cty.Type) int64 {
	ty := v.Type()
	if (want.IsListType() || want.IsSetType()) && ty.IsTupleType() || want.IsMapType() && (ty.IsObjectType() || ty.IsMapType()) {
		n, _ := size(v)
		return mulSat(n, n)
	}
	return 0
}
