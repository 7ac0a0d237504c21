// Package gguf reads and writes GGUF, the single-file model format of ggml
// and llama.cpp (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// A GGUF file is, all little-endian:
//
//	magic "GGUF", version uint32 (2 or 3), tensor count uint64, KV count uint64
//	KV pairs: key string, value type uint32, value
//	tensor infos: name string, n_dims uint32, ne [n_dims]uint64, type uint32,
//	              offset uint64 (relative to the data section)
//	padding to the alignment (general.alignment, default 32)
//	tensor data, each tensor's offset a multiple of the alignment
//
// where a string is a uint64 byte length and the bytes, and an array value is
// an element type uint32, a uint64 count and the elements. ne[0] is the
// contiguous dimension; this package reports shapes outermost-first, as the
// tensor package does, so Shape is ne reversed.
//
// The reader validates everything it reads and never allocates more than a
// small multiple of the input's size, so it is safe on hostile files. The
// block-quantized element types themselves live in quant/ggml.
package gguf

import (
	"fmt"
	"math"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Version is the GGUF version Write emits.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment (uint32).
const KeyAlignment = "general.alignment"

// MaxDims is the most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
const MaxDims = 4

// Limits on what a header may claim, beyond fitting in the input.
const (
	maxStringLen = 1 << 30 // one key or string value
	maxNameLen   = 1 << 16 // a tensor name or key (llama.cpp uses 64; be lenient)
	maxArrayNest = 4       // arrays of arrays
)

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String returns the type's name as the specification spells it.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size is the encoded size of a fixed-size value, 0 for string and array.
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t can take.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return t.size()
}

// KV is one metadata key and its value. Values are Go types: uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64; arrays are slices of those ([]string, []float32, ...), and an
// array of arrays is []any holding such slices.
type KV struct {
	Key   string
	Value any
}

// TypeOf returns the GGUF value type of a Go value as KV documents, and for
// arrays the element type; ok is false for any other Go type.
func TypeOf(v any) (t, elem ValueType, ok bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, true
	case int8:
		return TypeInt8, 0, true
	case uint16:
		return TypeUint16, 0, true
	case int16:
		return TypeInt16, 0, true
	case uint32:
		return TypeUint32, 0, true
	case int32:
		return TypeInt32, 0, true
	case float32:
		return TypeFloat32, 0, true
	case bool:
		return TypeBool, 0, true
	case string:
		return TypeString, 0, true
	case uint64:
		return TypeUint64, 0, true
	case int64:
		return TypeInt64, 0, true
	case float64:
		return TypeFloat64, 0, true
	case []uint8:
		return TypeArray, TypeUint8, true
	case []int8:
		return TypeArray, TypeInt8, true
	case []uint16:
		return TypeArray, TypeUint16, true
	case []int16:
		return TypeArray, TypeInt16, true
	case []uint32:
		return TypeArray, TypeUint32, true
	case []int32:
		return TypeArray, TypeInt32, true
	case []float32:
		return TypeArray, TypeFloat32, true
	case []bool:
		return TypeArray, TypeBool, true
	case []string:
		return TypeArray, TypeString, true
	case []uint64:
		return TypeArray, TypeUint64, true
	case []int64:
		return TypeArray, TypeInt64, true
	case []float64:
		return TypeArray, TypeFloat64, true
	case []any:
		return TypeArray, TypeArray, true
	}
	return 0, 0, false
}

// toUint64 converts any Go integer to uint64; ok is false for negative
// values and non-integers.
func toUint64(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// ToInt64 converts any Go integer (as metadata values arrive) to int64; ok
// is false for non-integers and for uint64 values above math.MaxInt64.
func ToInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}
