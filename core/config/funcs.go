package config

import (
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions a pipeline file may call: the cty
// standard library under Terraform's names, and env(NAME), which reads the
// environment through getenv ("" when unset); each charges b what it
// costs (see charged), and the budget's hooks are there too.
func functions(getenv func(string) string, b *budget) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":        stdlib.AbsoluteFunc,
		"ceil":       stdlib.CeilFunc,
		"chomp":      stdlib.ChompFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"csvdecode":  stdlib.CSVDecodeFunc,
		"distinct":   stdlib.DistinctFunc,
		"element":    stdlib.ElementFunc,
		"env":        envFunc(getenv),
		"flatten":    stdlib.FlattenFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"formatlist": stdlib.FormatListFunc,
		"indent":     stdlib.IndentFunc,
		"index":      stdlib.IndexFunc,
		"join":       stdlib.JoinFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"parseint":   stdlib.ParseIntFunc,
		"range":      stdlib.RangeFunc,
		"regex":      stdlib.RegexFunc,
		"regexall":   stdlib.RegexAllFunc,
		"replace":    stdlib.ReplaceFunc,
		"reverse":    stdlib.ReverseListFunc,
		"setproduct": stdlib.SetProductFunc,
		"slice":      stdlib.SliceFunc,
		"sort":       stdlib.SortFunc,
		"split":      stdlib.SplitFunc,
		"strlen":     stdlib.StrlenFunc,
		"substr":     stdlib.SubstrFunc,
		"title":      stdlib.TitleFunc,
		"tolist":     b.toCollection("tolist", cty.List(cty.DynamicPseudoType)),
		"tomap":      b.toCollection("tomap", cty.Map(cty.DynamicPseudoType)),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      b.toCollection("toset", cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
		"zipmap":     stdlib.ZipmapFunc,
	}
	fs["base64encode"] = base64Func
	for name, f := range fs {
		fs[name] = b.charged(name, f, estimates[name])
	}
	for name, f := range b.hooks {
		fs[name] = f
	}
	return fs
}

// toCollection is stdlib's MakeToFunc(want), for want a list, set or map of
// any type, converting in linear time what fastConvert can, and charging
// the slowCost of what it cannot.
func (b *budget) toCollection(name string, want cty.Type) function.Function {
	generic := stdlib.MakeToFunc(want)
	return function.New(&function.Spec{
		Description: generic.Description(),
		Params:      generic.Params(),
		Type: func(args []cty.Value) (cty.Type, error) {
			if v, ok := fastConvert(args[0], want); ok {
				return v.Type(), nil
			}
			if err := b.charge(slowCost(args[0], want), 0, name); err != nil {
				return cty.NilType, err
			}
			return generic.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if v, ok := fastConvert(args[0], want); ok {
				return v, nil
			}
			return generic.Call(args)
		},
	})
}

// estimate returns what a call with args costs beyond the sizes of its
// arguments and result: what it makes on the way, or would make were it
// not refused (setproduct's result is charged before it is made). It
// returns an error for a call probe refuses outright.
type estimate func(args []cty.Value) (steps, bytes int64, err error)

// charged returns f charging b, before the call, callStep, one step per
// argument and the size of each argument (every call walks its
// arguments), and what est says; after the call, the size of the result.
// A parameter of a list, set or map type takes any value, which
// budget.convert converts: HCL would convert it with go-cty before the
// charge, a tuple to a list in time quadratic in its length.
func (b *budget) charged(name string, f function.Function, est estimate) function.Function {
	params, varParam := f.Params(), f.VarParam()
	want := func(i int) cty.Type {
		if i < len(params) {
			return params[i].Type
		}
		return varParam.Type
	}
	loosen := func(p function.Parameter) function.Parameter {
		if p.Type.IsCollectionType() {
			p.Type = cty.DynamicPseudoType
		}
		return p
	}
	spec := &function.Spec{Description: f.Description()}
	for _, p := range params {
		spec.Params = append(spec.Params, loosen(p))
	}
	if varParam != nil {
		vp := loosen(*varParam)
		spec.VarParam = &vp
	}
	convert := func(args []cty.Value) ([]cty.Value, error) {
		out := make([]cty.Value, len(args))
		for i, a := range args {
			if ty := want(i); ty.IsCollectionType() {
				v, err := b.convert(a, ty, name)
				if le := (*limitError)(nil); errors.As(err, &le) {
					return nil, err
				} else if err != nil {
					return nil, function.NewArgError(i, err)
				}
				a = v
			}
			out[i] = a
		}
		return out, nil
	}
	spec.Type = func(args []cty.Value) (cty.Type, error) {
		steps, bytes := int64(callStep+len(args)), int64(0)
		for _, a := range args {
			n, by := size(a)
			steps, bytes = addSat(steps, n), addSat(bytes, by)
		}
		if est != nil {
			s, by, err := est(args)
			if err != nil {
				return cty.NilType, err
			}
			steps, bytes = addSat(steps, s), addSat(bytes, by)
		}
		if err := b.charge(steps, bytes, name); err != nil {
			return cty.NilType, err
		}
		args, err := convert(args)
		if err != nil {
			return cty.NilType, err
		}
		return f.ReturnTypeForValues(args)
	}
	spec.Impl = func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		args, err := convert(args)
		if err != nil {
			return cty.NilVal, err
		}
		v, err := f.Call(args)
		if err != nil {
			return cty.NilVal, err
		}
		n, by := size(v)
		if err := b.charge(n, by, name); err != nil {
			return cty.NilVal, err
		}
		return v, nil
	}
	return function.New(spec)
}

// estimates are the functions whose cost their arguments' sizes do not
// bound: what they make grows with a product or a number, or their time
// with a square.
var estimates = map[string]estimate{
	"setproduct": func(args []cty.Value) (int64, int64, error) {
		n := int64(1)
		for _, a := range args {
			n = mulSat(n, lengthOf(a))
		}
		return mulSat(n, int64(len(args)+1)), 0, nil
	},
	"format": func(args []cty.Value) (int64, int64, error) {
		return 0, formatBytes(args), nil
	},
	"formatlist": func(args []cty.Value) (int64, int64, error) {
		n := int64(1)
		for _, a := range args[1:] {
			if v, _ := a.Unmark(); v.Type().IsListType() || v.Type().IsTupleType() {
				n = max(n, lengthOf(a))
			}
		}
		return n, mulSat(n, formatBytes(args)), nil
	},
	"indent": func(args []cty.Value) (int64, int64, error) {
		spaces, s := intOf(args[0]), stringOf(args[1])
		return 0, mulSat(spaces, int64(strings.Count(s, "\n")+1)), nil
	},
	"join": func(args []cty.Value) (int64, int64, error) {
		var n int64
		for _, a := range args[1:] {
			n = addSat(n, lengthOf(a))
		}
		return 0, mulSat(n, int64(len(stringOf(args[0])))), nil
	},
	"replace": func(args []cty.Value) (int64, int64, error) {
		s, sub, repl := stringOf(args[0]), stringOf(args[1]), stringOf(args[2])
		count := int64(strings.Count(s, sub))
		if len(sub) > 1 && sub[0] == '/' && sub[len(sub)-1] == '/' {
			re, err := regexp.Compile(sub[1 : len(sub)-1])
			if err != nil {
				return 0, 0, nil // replace says what is wrong
			}
			count = int64(len(re.FindAllStringIndex(s, -1)))
		}
		return 0, addSat(mulSat(count, int64(len(repl))), mulSat(int64(strings.Count(repl, "$")), int64(len(s)))), nil
	},
	"regexall": func(args []cty.Value) (int64, int64, error) {
		re, err := regexp.Compile(stringOf(args[0]))
		if err != nil {
			return 0, 0, nil
		}
		matches := int64(len(re.FindAllStringIndex(stringOf(args[1]), -1)))
		return mulSat(matches, int64(re.NumSubexp()+1)), 0, nil
	},
	"csvdecode": func(args []cty.Value) (int64, int64, error) {
		return int64(len(stringOf(args[0]))), 0, nil
	},
	"jsondecode": func(args []cty.Value) (int64, int64, error) {
		s := stringOf(args[0])
		if depth := jsonDepth(s); depth > maxNesting {
			return 0, 0, errors.New(printer.Sprintf("the JSON nests %d levels deep; probe decodes at most %d", depth, maxNesting))
		}
		return int64(len(s) / 2), 0, nil
	},
	// Parsing a number takes time quadratic in its digits.
	"parseint": numberParse,
	"tonumber": numberParse,
	"distinct": func(args []cty.Value) (int64, int64, error) {
		n := lengthOf(args[0])
		return mulSat(n, n) / 16, 0, nil // it compares every element with those kept
	},
}

func numberParse(args []cty.Value) (int64, int64, error) {
	n := int64(len(stringOf(args[0])) / 64)
	return mulSat(n, n), 0, nil
}

// lengthOf returns the length of a known collection, 1 for anything else.
func lengthOf(v cty.Value) int64 {
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() || !v.CanIterateElements() {
		return 1
	}
	return int64(v.LengthInt())
}

// stringOf returns v's string, "" when v is not a known string.
func stringOf(v cty.Value) string {
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// intOf returns v's number as an int64, saturated, 0 when v is not a known
// number.
func intOf(v cty.Value) int64 {
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
		return 0
	}
	f, _ := v.AsBigFloat().Float64()
	return int64(max(min(f, 1<<62), 0))
}

// formatBytes returns the length of format's format (args[0]) and what
// the widths and precisions of its verbs add: "%1000000000d" makes a
// gigabyte.
func formatBytes(args []cty.Value) int64 {
	f := stringOf(args[0])
	number := func(i int) (int64, int) {
		var v int64
		for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
			v = addSat(mulSat(v, 10), int64(f[i]-'0'))
		}
		return v, i
	}
	n := int64(len(f))
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			i++
			continue
		}
		for i++; i < len(f) && strings.IndexByte("0#-+ ", f[i]) >= 0; i++ {
		}
		width, j := number(i)
		var prec int64
		if j < len(f) && f[j] == '.' {
			prec, j = number(j + 1)
		}
		n, i = addSat(n, addSat(width, prec)), j-1
	}
	return n
}

// jsonDepth returns how deeply the arrays and objects of the JSON text s
// nest: cty's decoder recurses once per level.
func jsonDepth(s string) int {
	depth, most, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			most = max(most, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return most
}

// envFunc is env(NAME): the value of the environment variable NAME, or ""
// when it is unset.
func envFunc(getenv func(string) string) function.Function {
	if getenv == nil {
		getenv = os.Getenv
	}
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
			return b.NotNull()
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
}

// base64Func is base64encode(STRING): the standard base64 of the string's
// UTF-8 bytes, as for an HTTP basic auth header.
var base64Func = function.New(&function.Spec{
	Description: "Returns the standard base64 encoding of a string's UTF-8 bytes.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String, AllowMarked: true}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, marks := args[0].Unmark()
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(v.AsString()))).WithMarks(marks), nil
	},
})
