package serve

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/format/gguf"
)

func TestRecognizeTemplate(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want TemplateKind
		err  bool
	}{
		{"", Plain, false},
		{"{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}", Llama3, false},
		{"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", ChatML, false},
		{"{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", Llama2, false},
		{"{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}{% endif %}{% endfor %}", Zephyr, false},
		{"{{ messages | tojson }}", Plain, true},
	} {
		got, err := RecognizeTemplate(tc.src)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("RecognizeTemplate(%.40q) = %v, %v; want %v (error %v)", tc.src, got, err, tc.want, tc.err)
		}
	}
}

// TestRender compares each template's rendering with what the model's own
// Jinja template produces for the same conversation (written out by hand
// from the templates' published sources).
func TestRender(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}
	for _, tc := range []struct {
		kind TemplateKind
		want string
	}{
		{Llama3, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
			"<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
			"<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{ChatML, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n" +
			"<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
		{Llama2, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]"},
		{Zephyr, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n"},
		{Plain, "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello.\n<|user|>\nBye\n<|assistant|>\n"},
	} {
		if got := Render(tc.kind, msgs, "</s>"); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.kind, got, tc.want)
		}
	}
}

func TestLoadChatTemplate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("str/tokenizer_config.json", `{"chat_template": "<|im_start|>{{x}}"}`)
	write("list/tokenizer_config.json", `{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`)
	write("none/tokenizer_config.json", `{"bos_token": "<s>"}`)
	write("jinja/tokenizer_config.json", `{"chat_template": "old"}`)
	write("jinja/chat_template.jinja", "new")
	write("bad/tokenizer_config.json", `{"chat_template": 5}`)
	write("empty/config.json", `{}`)
	bin := write("model.bin", "not a gguf")
	withTmpl := filepath.Join(dir, "chat.gguf")
	if err := gguf.WriteFile(withTmpl, []gguf.KV{{Key: "general.architecture", Value: "llama"}, {Key: "tokenizer.chat_template", Value: "<|im_start|>"}}, nil); err != nil {
		t.Fatal(err)
	}
	noTmpl := filepath.Join(dir, "plain.gguf")
	if err := gguf.WriteFile(noTmpl, []gguf.KV{{Key: "general.architecture", Value: "llama"}}, nil); err != nil {
		t.Fatal(err)
	}
	badTmpl := filepath.Join(dir, "bad.gguf")
	if err := gguf.WriteFile(badTmpl, []gguf.KV{{Key: "tokenizer.chat_template", Value: uint32(7)}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
		err        bool
	}{
		{filepath.Join(dir, "str"), "<|im_start|>{{x}}", false},
		{filepath.Join(dir, "list"), "D", false},
		{filepath.Join(dir, "none"), "", false},
		{filepath.Join(dir, "jinja"), "new", false},
		{filepath.Join(dir, "bad"), "", true},
		{filepath.Join(dir, "empty"), "", false},
		{bin, "", false},
		{withTmpl, "<|im_start|>", false},
		{noTmpl, "", false},
		{badTmpl, "", true},
		{filepath.Join(dir, "missing"), "", true},
	} {
		got, err := LoadChatTemplate(tc.path)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("LoadChatTemplate(%s) = %q, %v; want %q (error %v)", tc.path, got, err, tc.want, tc.err)
		}
	}
}
