package tokenizer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// readGGUFMetadata is a minimal GGUF v2/v3 metadata reader for tests (the
// real reader lives in format/gguf).
func readGGUFMetadata(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var hdr struct {
		Magic   [4]byte
		Version uint32
		NT, NKV uint64
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, err
	}
	if string(hdr.Magic[:]) != "GGUF" || hdr.Version < 2 {
		return nil, fmt.Errorf("%s: not GGUF v2+", path)
	}
	u32 := func() uint32 { var v uint32; binary.Read(r, binary.LittleEndian, &v); return v }
	u64 := func() uint64 { var v uint64; binary.Read(r, binary.LittleEndian, &v); return v }
	str := func() (string, error) {
		n := u64()
		if n > 1<<30 {
			return "", fmt.Errorf("string too long")
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	var scalar func(ty uint32) (any, error)
	scalar = func(ty uint32) (any, error) {
		switch ty {
		case 0:
			b, err := r.ReadByte()
			return b, err
		case 1:
			b, err := r.ReadByte()
			return int8(b), err
		case 2:
			var v uint16
			return v, binary.Read(r, binary.LittleEndian, &v)
		case 3:
			var v int16
			return v, binary.Read(r, binary.LittleEndian, &v)
		case 4:
			return u32(), nil
		case 5:
			return int32(u32()), nil
		case 6:
			return math.Float32frombits(u32()), nil
		case 7:
			b, err := r.ReadByte()
			return b != 0, err
		case 8:
			return str()
		case 10:
			return u64(), nil
		case 11:
			return int64(u64()), nil
		case 12:
			return math.Float64frombits(u64()), nil
		}
		return nil, fmt.Errorf("bad type %d", ty)
	}
	md := map[string]any{}
	for i := uint64(0); i < hdr.NKV; i++ {
		key, err := str()
		if err != nil {
			return nil, err
		}
		ty := u32()
		if ty != 9 {
			v, err := scalar(ty)
			if err != nil {
				return nil, err
			}
			md[key] = v
			continue
		}
		et, n := u32(), u64()
		var vals []any
		for j := uint64(0); j < n; j++ {
			v, err := scalar(et)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		switch et {
		case 8:
			s := make([]string, n)
			for j, v := range vals {
				s[j] = v.(string)
			}
			md[key] = s
		case 6:
			s := make([]float32, n)
			for j, v := range vals {
				s[j] = v.(float32)
			}
			md[key] = s
		case 5:
			s := make([]int32, n)
			for j, v := range vals {
				s[j] = v.(int32)
			}
			md[key] = s
		default:
			md[key] = vals
		}
	}
	return md, nil
}
