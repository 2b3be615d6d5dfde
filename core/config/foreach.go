package config

import (
	"fmt"
	"iter"
	"slices"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// expansion is a block's for_each, evaluated: the keys and values of the
// instances it makes, or the block alone when it has no for_each.
type expansion struct {
	name    string
	forEach bool
	elems   []element
	// budget ends the instances once evaluation has gone past it.
	budget *budget
	// sensitive: for_each's value holds a sensitive value, so each.key and
	// each.value are marked sensitive too.
	sensitive bool
}

// element is one for_each element: the key and value of an instance.
type element struct {
	key string
	val cty.Value
}

// instance is one instance of a block: the block itself, or one for_each
// element, named NAME[KEY], with each.key and each.value in its context.
type instance struct {
	key  string // "" without for_each
	name string
	ctx  *hcl.EvalContext
}

// expand evaluates the for_each of block b, Terraform-style: a map or
// object gives one instance per key, in key order; a list, tuple or set of
// strings one per string (each.key = each.value); another list one per
// index. ok is false when the block makes no instance because of an error,
// recorded: for_each is invalid, gives a key twice, or, in a block without
// for_each, an attribute refers to each.
func (d *decoder) expand(b *hcl.Block, forEach *hcl.Attribute) (x expansion, ok bool) {
	x = expansion{name: b.Labels[0], forEach: forEach != nil, budget: d.budget}
	if forEach == nil {
		return x, d.noEach(b)
	}
	val, diags := forEach.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	val, x.sensitive = d.unmark(val) // the instances' names may hold a secret
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return x, false
	}
	ty := val.Type()
	if val.IsNull() || !(ty.IsMapType() || ty.IsObjectType() || ty.IsListType() || ty.IsTupleType() || ty.IsSetType()) {
		d.attrError(forEach, "Invalid for_each argument",
			fmt.Sprintf("The for_each argument must be a map, an object, a list or a set, not %s.", ty.FriendlyName()))
		return x, false
	}
	for it := val.ElementIterator(); it.Next(); {
		k, v := it.Element()
		switch {
		case ty.IsMapType() || ty.IsObjectType():
			x.elems = append(x.elems, element{k.AsString(), v})
		case !v.IsNull() && v.Type() == cty.String:
			x.elems = append(x.elems, element{v.AsString(), v})
		default:
			idx, _ := k.AsBigFloat().Int64()
			x.elems = append(x.elems, element{fmt.Sprint(idx), v})
		}
	}
	// Each instance evaluates the block's body again, lists and objects
	// written in it included, but for for_each.
	var body int64
	if syn, ok := b.Body.(*hclsyntax.Body); ok {
		body = items(syn) - items(syn.Attributes["for_each"].Expr)
	}
	if !d.chargeAt(mulSat(int64(len(x.elems)), 1+body), 0, forEach.Expr.Range(), fmt.Sprintf("the instances of %s %q", b.Type, x.name)) {
		return x, false
	}
	if ty.IsMapType() || ty.IsObjectType() {
		sort.Slice(x.elems, func(i, j int) bool { return x.elems[i].key < x.elems[j].key })
		return x, true
	}
	seen := make(map[string]bool, len(x.elems))
	for _, e := range x.elems {
		if seen[e.key] {
			d.attrError(forEach, "Duplicate for_each key", fmt.Sprintf(
				"The for_each value gives the key %q more than once, and each instance needs a key of its own. "+
					"toset(...) drops repeated strings.", e.key))
			return x, false
		}
		seen[e.key] = true
	}
	return x, true
}

// noEach reports every reference to each in block b, which has no for_each,
// and returns whether there was none.
func (d *decoder) noEach(b *hcl.Block) bool {
	body, ok := b.Body.(*hclsyntax.Body)
	if !ok {
		return true
	}
	var refs []hcl.Range
	for _, a := range body.Attributes {
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() == "each" {
				refs = append(refs, tr.SourceRange())
			}
		}
	}
	slices.SortFunc(refs, func(a, b hcl.Range) int { return a.Start.Byte - b.Start.Byte })
	for _, rng := range refs {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: `Reference to "each" in context without for_each`,
			Detail: fmt.Sprintf("each.key and each.value exist only in a block with for_each, where they are the key and "+
				"value of the instance; this %s block has no for_each.", b.Type),
			Subject: rng.Ptr()})
	}
	return len(refs) == 0
}

// instances yields the instances of x, under ctx, until evaluation goes
// past its budget. Each instance's context is made as it is yielded, so
// that a for_each of many elements does not hold every element's context
// at once (about 1 KB each).
func (x expansion) instances(ctx *hcl.EvalContext) iter.Seq[instance] {
	return func(yield func(instance) bool) {
		if !x.forEach {
			yield(instance{name: x.name, ctx: ctx})
			return
		}
		for _, e := range x.elems {
			if x.budget.exhausted() {
				return
			}
			key, val := cty.StringVal(e.key), e.val
			if x.sensitive {
				key, val = key.Mark(sensitiveMark), val.Mark(sensitiveMark)
			}
			child := ctx.NewChild()
			child.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": key, "value": val})}
			if !yield(instance{key: e.key, name: fmt.Sprintf("%s[%s]", x.name, e.key), ctx: child}) {
				return
			}
		}
	}
}

// block is a resolver, dialer, handshake or pipeline block as references
// see it: its instances by key ("" for a block without for_each), T's zero
// value for one that had errors of its own.
type block[T comparable] struct {
	kind, name string
	decl       hcl.Range
	forEach    bool
	// broken: the block's for_each had errors, so its keys are unknown.
	broken    bool
	instances map[string]T
}

// newBlock returns the block of b, whose expansion is x; ok is expand's.
func newBlock[T comparable](b *hcl.Block, x expansion, ok bool) *block[T] {
	return &block[T]{kind: b.Type, name: b.Labels[0], decl: b.DefRange, forEach: x.forEach, broken: !ok,
		instances: make(map[string]T, max(len(x.elems), 1))}
}

// ref returns the HCL reference to the instance key of blk.
func (blk *block[T]) ref(key string) string {
	if !blk.forEach {
		return blk.kind + "." + blk.name
	}
	return fmt.Sprintf("%s.%s[%q]", blk.kind, blk.name, key)
}

// keys returns blk's instance keys, sorted.
func (blk *block[T]) keys() []string {
	keys := make([]string, 0, len(blk.instances))
	for k := range blk.instances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolve resolves the reference e, KIND.NAME or KIND.NAME[KEY], to an
// instance of one of blocks, with KEY evaluated in ctx (so it may be
// each.key or each.value). ok is false when e does not resolve: the error is
// recorded, unless the instance referred to has errors of its own, which
// are.
func resolve[T comparable](d *decoder, blocks map[string]*block[T], e hcl.Expression, kind string, ctx *hcl.EvalContext) (inst T, ok bool) {
	var zero T
	name, key, indexed, ok := d.refParts(e, kind, ctx)
	if !ok {
		return zero, false
	}
	blk := blocks[name]
	if blk == nil {
		names := make([]string, 0, len(blocks))
		for n := range blocks {
			names = append(names, n)
		}
		sort.Strings(names)
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("Reference to undeclared %s", kind),
			Detail:  fmt.Sprintf("There is no %s block named %q in this file.%s", kind, name, didYouMean(name, names)),
			Subject: e.Range().Ptr()})
		return zero, false
	}
	if blk.broken {
		return zero, false
	}
	switch {
	case blk.forEach && !indexed:
		example := blk.kind + "." + blk.name + "[KEY]"
		if keys := blk.keys(); len(keys) > 0 {
			example = blk.ref(keys[0])
		}
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing instance key",
			Detail:  fmt.Sprintf("%s.%s has for_each; refer to one instance, such as %s.", blk.kind, blk.name, example),
			Subject: e.Range().Ptr()})
		return zero, false
	case !blk.forEach && indexed:
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unexpected instance key",
			Detail:  fmt.Sprintf("%s has no for_each, so it is a single %s: refer to it as %s.", blk.ref(""), kind, blk.ref("")),
			Subject: e.Range().Ptr()})
		return zero, false
	}
	inst, exists := blk.instances[key]
	if !exists {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown instance key",
			Detail: fmt.Sprintf("%s.%s has no instance with the key %q; its keys are %s.%s",
				blk.kind, blk.name, key, someKeys(blk.keys()), didYouMean(key, blk.keys())),
			Subject: e.Range().Ptr()})
		return zero, false
	}
	return inst, inst != zero
}

// someKeys quotes and joins the first of keys, saying how many more there
// are: a for_each may have thousands.
func someKeys(keys []string) string {
	const shown = 10
	if len(keys) == 0 {
		return "none (its for_each is empty)"
	}
	if len(keys) <= shown {
		return quoteJoin(keys)
	}
	return fmt.Sprintf("%s and %d more", quoteJoin(keys[:shown]), len(keys)-shown)
}

// misspeltKind returns " Did you mean "KIND.NAME"?" for the traversal tr
// (with diags, its parsing's) when its first word is a misspelling of kind:
// pipline.https for pipeline.https.
func misspeltKind(tr hcl.Traversal, diags hcl.Diagnostics, kind string) string {
	if diags.HasErrors() || len(tr) < 2 || tr.RootName() == kind {
		return ""
	}
	step, ok := tr[1].(hcl.TraverseAttr)
	if !ok || didYouMean(tr.RootName(), []string{kind}) == "" {
		return ""
	}
	return didYouMean(tr.RootName()+"."+step.Name, []string{kind + "." + step.Name})
}

// refParts reads a reference KIND.NAME or KIND.NAME[KEY]; indexed says
// whether it had a key, evaluated in ctx and converted to a string.
func (d *decoder) refParts(e hcl.Expression, kind string, ctx *hcl.EvalContext) (name, key string, indexed, ok bool) {
	collection, keyExpr := e, hcl.Expression(nil)
	if ix, isIndex := e.(*hclsyntax.IndexExpr); isIndex {
		collection, keyExpr = ix.Collection, ix.Key
	}
	tr, diags := hcl.AbsTraversalForExpr(collection)
	valid := !diags.HasErrors() && tr.RootName() == kind && (len(tr) == 2 || len(tr) == 3 && keyExpr == nil)
	if valid {
		step, isAttr := tr[1].(hcl.TraverseAttr)
		name, valid = step.Name, isAttr
	}
	var keyVal cty.Value
	if valid && len(tr) == 3 {
		step, isIndex := tr[2].(hcl.TraverseIndex)
		keyVal, valid = step.Key, isIndex
		keyExpr = collection
	}
	if !valid {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference",
			Detail: fmt.Sprintf("Expected a reference to a %s block, such as %s.NAME, or to one instance of a %s block with "+
				"for_each, such as %s.NAME[each.key] or %s.NAME[\"KEY\"].%s", kind, kind, kind, kind, kind,
				misspeltKind(tr, diags, kind)),
			Subject: e.Range().Ptr()})
		return "", "", false, false
	}
	if keyExpr == nil {
		return name, "", false, true
	}
	if keyVal == cty.NilVal {
		var diags hcl.Diagnostics
		keyVal, diags = keyExpr.Value(ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			return "", "", false, false
		}
	}
	keyVal, _ = d.unmark(keyVal)
	if !keyVal.IsWhollyKnown() {
		return "", "", false, false // from a variable that already has an error
	}
	sv, err := convert.Convert(keyVal, cty.String)
	if err != nil || sv.IsNull() {
		got := "null"
		if !keyVal.IsNull() {
			got = keyVal.Type().FriendlyName()
		}
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid instance key",
			Detail:  fmt.Sprintf("An instance key is a string, such as each.key; got %s.", got),
			Subject: keyExpr.Range().Ptr()})
		return "", "", false, false
	}
	return name, sv.AsString(), true, true
}
