package kv

import (
	"reflect"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
)

func TestParse(t *testing.T) {
	good := []struct{ in, want string }{
		{"f32", "f32"},
		{"F16", "f16"},
		{"bf16", "bf16"},
		{"q8_0", "q8_0"},
		{"q4_0", "q4_0"},
		{"q4_1", "q4_1"},
		{"q5_0", "q5_0"},
		{"q5_1", "q5_1"},
		{"iq4_nl", "iq4_nl"},
		{"kivi", "kivi:k2v2:g32:r128"},
		{"kivi:k2v2", "kivi:k2v2:g32:r128"},
		{"kivi:k4v4", "kivi:k4v4:g32:r128"},
		{"kivi:k2v2:g32:r128", "kivi:k2v2:g32:r128"},
		{"kivi:r64:g16:k4v2", "kivi:k4v2:g16:r64"},
		{"kivi:k8v8:g64:r0", "kivi:k8v8:g64:r0"},
		{"zip", "zip:h4:l2:f0.4:g32:s0"},
		{"zip:f0.25:h8:l3:s4:p", "zip:h8:l3:f0.25:g32:s4:p"},
		{"stair", "stair:b4/2:w128:g32:s0"},
		{"stair:b8/4/2", "stair:b8/4/2:w128/128:g32:s0"},
		{"stair:b3:g64", "stair:b3:g64:s0"},
		{"stair:b16/3:w32:s1:p", "stair:b16/3:w32:g32:s1:p"},
		{"gear", "gear:b4:g32:o2:r2:c64"},
		{"gear:b2:o0:r4:c128:g16", "gear:b2:g16:o0:r4:c128"},
		{"snapkv", "snapkv:0.5:w32:k5+f32"},
		{"snapkv:0.25:w16:k7+kivi:k4v4", "snapkv:0.25:w16:k7+kivi:k4v4:g32:r128"},
		{"ems", "ems:0.5:w32:t0.4+f32"},
		{"ems:0.25:t0.8:s", "ems:0.25:w32:t0.8:s+f32"},
		{"ems:0.5:e:w8", "ems:0.5:w8:t0.4:e+f32"},
		{"ems:256:w8+q4_0", "ems:256:w8:t0.4+q4_0"},
		{"h2o:0.5+zip", "h2o:0.5:r50+zip:h4:l2:f0.4:g32:s0"},
		{"rq", "rq:k3:v3:s0"},
		{"rq:k4:v2.5:s1", "rq:k4:v2.5:s1"},
		{"rq:v16:s0:p:k3/4/2.75", "rq:k3/4/2.75:v16:s0:p"},
		{"h2o:0.5+rq:k2", "h2o:0.5:r50+rq:k2:v2:s0"},
		{"rq:m:k4", "rq:k4:v4:s0:m"},
	}
	for _, c := range good {
		sp, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := sp.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "want f32"},
		{"f32:x", "want f32"},
		{"q3_k", "unknown cache"},
		{"q8_0:g32", "no parameters"},
		{"kivi:k3v2", "want 2, 4 or 8"},
		{"kivi:k2", "want kBvB"},
		{"kivi:k2v2:k4v4", "twice"},
		{"kivi:g0", "integer in"},
		{"kivi:g32:r100", "not a multiple"},
		{"kivi:x1", "unknown field"},
		{"kivi::g32", "empty field"},
		{"kivi:r-32", "integer in"},
		{"zip:h9", "1 to 8, or 16"},
		{"zip:f1.5", "fraction"},
		{"zip:h4:h2", "twice"},
		{"zip:x", "unknown field"},
		{"stair:b4/2/2:w64", "need 2 widths"},
		{"stair:b4/", "bits: want"},
		{"gear:o60", "percentage"},
		{"gear:r65", "integer in"},
		{"gear:q4", "unknown field"},
		{"snapkv:0.5:k4", "odd width"},
		{"snapkv:0.5:r50", "unknown field"},
		{"ems:0.5:w0", "integer in"},
		{"ems:0.5:w8:w9", "twice"},
		{"ems:0.5:t1.5", "cosine"},
		{"ems:0.5:tx", "cosine"},
		{"ems:0.5:e:e", "twice"},
		{"ems:0.5:k5", "unknown field"},
		{"zip+q4_0", "take a +CACHE"},
		{"rq:k9", "1 to 8"},
		{"rq:k0.5", "1 to 8"},
		{"rq:k3/", "1 to 8"},
		{"rq:v4:v4", "twice"},
		{"rq:m:m", "twice"},
		{"rq:g32", "unknown field"},
		{"rq:s-1", "integer in"},
	}
	for _, c := range bad {
		_, err := Parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Parse(%q) = %v, want an error with %q", c.in, err, c.msg)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"f32", "q4_0", "h2o", "sink:4:r64+q8_0", "kivi", "kivi:k2v2:g32:r128", "kivi:k4v4", "kivi:g16:r0", "q8_0:",
		"zip", "zip:h8:l3:f0.25:s4:p", "stair:b8/4/2:w16/32", "gear:b2:o5:r4:c16", "snapkv:0.25:w8:k3+zip", "ems:12:w4+stair:b3", "ems:0.25:w8:t0.7:s+q8_0", "ems:0.5:t-1:e",
		"rq", "rq:k2.5:v4:s0:p", "rq:m:s3", "rq:k3/4", "h2o:0.5+rq:k16:v1", "ems:1000000", "h2o:1e-9", "zip:f1e-7"} {
		f.Add(s)
	}
	cfg := &model.Config{NLayers: 1, NHeads: 1, NKVHeads: 1, HeadDim: 32}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(sp.String())
		if err != nil || !reflect.DeepEqual(again, sp) {
			t.Fatalf("Parse(%q) = %s, which parses as %v, %v", s, sp, again, err)
		}
		if sp.Group > 64 || sp.Residual > 256 {
			return
		}
		if _, err := sp.New(cfg, 4); err != nil && !strings.Contains(err.Error(), "head dimension") && !strings.Contains(err.Error(), "layers") {
			t.Fatalf("%s.New: %v", sp, err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	cfg := &model.Config{NLayers: 1, NHeads: 2, NKVHeads: 1, HeadDim: 16}
	for _, s := range []string{"q4_0", "kivi:g32:r0"} {
		sp, _ := Parse(s)
		if _, err := sp.New(cfg, 8); err == nil || !strings.Contains(err.Error(), "head dimension 16") {
			t.Errorf("%s on head_dim 16: %v, want an error naming the head dimension", s, err)
		}
	}
	sp, _ := Parse("f16")
	if _, err := sp.New(cfg, 0); err == nil {
		t.Errorf("f16 of 0 positions: no error")
	}
}
