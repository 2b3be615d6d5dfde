package probev1

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// A phase's attributes travel in Phase.attrs as the bytes of an Attrs
// message. AppendAttrs and DecodeAttrs write and read that message straight
// from and to a map[string]any, the form plugins report and probe keeps;
// going through the generated types (Attrs, Attr, Value) cost three times
// as much CPU and allocations per attempt (BenchmarkAttrs). The bytes are
// protobuf, so a plugin in another language builds an Attrs message and
// serializes it; TestAttrsAreProtobuf checks both directions against the
// generated code.
//
// The Go types kept are those of Value: string, bool, int, int64, float64,
// []string, map[string]any, []any and []map[string]any. Any other value
// travels as JSON and comes back as encoding/json decodes it. Strings are
// not checked for UTF-8: an attribute carries what the peer sent.

// maxDepth bounds how deeply maps and lists nest in attributes, so that a
// cyclic map fails to encode and a hostile message fails to decode instead
// of exhausting the stack.
const maxDepth = 64

// errDepth is the error of attributes nested deeper than maxDepth.
var errDepth = fmt.Errorf("attributes nested deeper than %d levels", maxDepth)

// Field numbers of the messages in probe.proto that attributes are made of.
const (
	fieldAttrs     = 1 // Attrs.attrs, Map.values: repeated Attr
	fieldAttrKey   = 1 // Attr.key
	fieldAttrValue = 2 // Attr.value
	fieldValues    = 1 // StringList.values, List.values, MapList.values

	kindString  = 1
	kindBool    = 2
	kindInt     = 3
	kindInt64   = 4
	kindFloat64 = 5
	kindStrings = 6
	kindMap     = 7
	kindList    = 8
	kindMaps    = 9
	kindJSON    = 10
)

// AppendAttrs appends m, encoded as an Attrs message, to b.
func AppendAttrs(b []byte, m map[string]any) ([]byte, error) {
	return appendAttrList(b, m, 0)
}

// appendAttrList appends each entry of m as an Attr in field 1: the body of
// an Attrs or a Map message.
func appendAttrList(b []byte, m map[string]any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	for k, v := range m {
		b = protowire.AppendTag(b, fieldAttrs, protowire.BytesType)
		attr := len(b) + 1
		b = protowire.AppendTag(append(b, 0), fieldAttrKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, fieldAttrValue, protowire.BytesType)
		val := len(b) + 1
		var err error
		if b, err = appendValue(append(b, 0), v, depth); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		b = closeMessage(closeMessage(b, val), attr)
	}
	return b, nil
}

// appendValue appends the body of a Value message holding v.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case string:
		b = protowire.AppendTag(b, kindString, protowire.BytesType)
		return protowire.AppendString(b, v), nil
	case bool:
		b = protowire.AppendTag(b, kindBool, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v)), nil
	case int:
		b = protowire.AppendTag(b, kindInt, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeZigZag(int64(v))), nil
	case int64:
		b = protowire.AppendTag(b, kindInt64, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeZigZag(v)), nil
	case float64:
		b = protowire.AppendTag(b, kindFloat64, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v)), nil
	case []string:
		b = protowire.AppendTag(b, kindStrings, protowire.BytesType)
		body := len(b) + 1
		b = append(b, 0)
		for _, s := range v {
			b = protowire.AppendTag(b, fieldValues, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
		return closeMessage(b, body), nil
	case map[string]any:
		b = protowire.AppendTag(b, kindMap, protowire.BytesType)
		body := len(b) + 1
		b, err := appendAttrList(append(b, 0), v, depth+1)
		if err != nil {
			return nil, err
		}
		return closeMessage(b, body), nil
	case []any:
		b = protowire.AppendTag(b, kindList, protowire.BytesType)
		body := len(b) + 1
		b = append(b, 0)
		for i, e := range v {
			b = protowire.AppendTag(b, fieldValues, protowire.BytesType)
			val := len(b) + 1
			var err error
			if b, err = appendValue(append(b, 0), e, depth+1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			b = closeMessage(b, val)
		}
		return closeMessage(b, body), nil
	case []map[string]any:
		b = protowire.AppendTag(b, kindMaps, protowire.BytesType)
		body := len(b) + 1
		b = append(b, 0)
		for i, m := range v {
			b = protowire.AppendTag(b, fieldValues, protowire.BytesType)
			item := len(b) + 1
			var err error
			if b, err = appendAttrList(append(b, 0), m, depth+1); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			b = closeMessage(b, item)
		}
		return closeMessage(b, body), nil
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, kindJSON, protowire.BytesType)
		return protowire.AppendBytes(b, raw), nil
	}
}

// closeMessage writes the length of the nested message that starts at
// body, to the end of b, into the one byte before body that was kept for
// it, moving the message when its length takes more than one byte.
func closeMessage(b []byte, body int) []byte {
	n := len(b) - body
	if n < 0x80 {
		b[body-1] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[body+k-1:], b[body:body+n])
	protowire.AppendVarint(b[:body-1], uint64(n)) // in place: the room is there
	return b
}

// DecodeAttrs decodes an Attrs message; the map is never nil.
func DecodeAttrs(b []byte) (map[string]any, error) {
	return decodeAttrList(b, 0)
}

// decodeAttrList decodes the Attr entries in field 1 of an Attrs or Map
// message, skipping other fields.
func decodeAttrList(b []byte, depth int) (map[string]any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	out := map[string]any{}
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return nil, err
		}
		b = rest
		if num != fieldAttrs {
			continue
		}
		if typ != protowire.BytesType {
			return nil, fmt.Errorf("attribute: wire type %d", typ)
		}
		if err := decodeAttr(body, out, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeAttr decodes one Attr message into out.
func decodeAttr(b []byte, out map[string]any, depth int) error {
	var (
		key      string
		val      []byte
		hasValue bool
	)
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case num == fieldAttrKey && typ == protowire.BytesType:
			key = string(body)
		case num == fieldAttrValue && typ == protowire.BytesType:
			val, hasValue = body, true
		}
	}
	if !hasValue {
		return fmt.Errorf("%s: attribute without a value", key)
	}
	v, err := decodeValue(val, depth)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	out[key] = v
	return nil
}

// decodeValue decodes a Value message to the Go type it was sent as. As in
// protobuf, the last kind present wins; a kind this revision does not know
// is an error.
func decodeValue(b []byte, depth int) (any, error) {
	var (
		v   any
		err error
	)
	if len(b) == 0 {
		return nil, errors.New("value of no kind")
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		want := protowire.BytesType
		switch num {
		case kindBool, kindInt, kindInt64:
			want = protowire.VarintType
		case kindFloat64:
			want = protowire.Fixed64Type
		case kindString, kindStrings, kindMap, kindList, kindMaps, kindJSON:
		default:
			return nil, fmt.Errorf("value of an unknown kind (field %d)", num)
		}
		if typ != want {
			return nil, fmt.Errorf("value kind %d: wire type %d", num, typ)
		}
		switch typ {
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case kindBool:
				v = protowire.DecodeBool(x)
			case kindInt:
				v = int(protowire.DecodeZigZag(x))
			default:
				v = protowire.DecodeZigZag(x)
			}
		case protowire.Fixed64Type:
			x, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			v = math.Float64frombits(x)
		default:
			body, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			if v, err = decodeNested(num, body, depth); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// decodeNested decodes the length-delimited kinds of a Value.
func decodeNested(kind protowire.Number, b []byte, depth int) (any, error) {
	switch kind {
	case kindString:
		return string(b), nil
	case kindStrings:
		out := []string{}
		err := eachValue(b, func(e []byte) error {
			out = append(out, string(e))
			return nil
		})
		return out, err
	case kindMap:
		return decodeAttrList(b, depth+1)
	case kindList:
		out := []any{}
		err := eachValue(b, func(e []byte) error {
			v, err := decodeValue(e, depth+1)
			if err != nil {
				return fmt.Errorf("[%d]: %w", len(out), err)
			}
			out = append(out, v)
			return nil
		})
		return out, err
	case kindMaps:
		out := []map[string]any{}
		err := eachValue(b, func(e []byte) error {
			m, err := decodeAttrList(e, depth+1)
			if err != nil {
				return fmt.Errorf("[%d]: %w", len(out), err)
			}
			out = append(out, m)
			return nil
		})
		return out, err
	default: // kindJSON
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("decode JSON value: %w", err)
		}
		return out, nil
	}
}

// eachValue calls fn with each element of the repeated field 1 of a
// StringList, List or MapList message, skipping other fields.
func eachValue(b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		num, typ, body, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		if num != fieldValues {
			continue
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("list element: wire type %d", typ)
		}
		if err := fn(body); err != nil {
			return err
		}
	}
	return nil
}

// field consumes one field of b: its number, wire type and, for a
// length-delimited field, its body.
func field(b []byte) (num protowire.Number, typ protowire.Type, body, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	b = b[n:]
	if typ == protowire.BytesType {
		body, n = protowire.ConsumeBytes(b)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	return num, typ, body, b[n:], nil
}
