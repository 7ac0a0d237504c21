package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/gguf"
)

// Message is one chat message: a role (system, user, assistant, …) and its
// text.
type Message struct {
	Role, Content string
}

// TemplateKind names a chat template this package renders.
type TemplateKind string

// The chat templates Render knows. A model's own template (Jinja source) is
// recognised by its markers; Plain is used when a model has none.
const (
	Plain  TemplateKind = "plain"
	Llama3 TemplateKind = "llama3"
	ChatML TemplateKind = "chatml"
	Llama2 TemplateKind = "llama2"
	Zephyr TemplateKind = "zephyr"
)

// RecognizeTemplate says which known template the Jinja source src is, by
// its markers: <|start_header_id|> (Llama 3), <|im_start|> (ChatML),
// [INST] (Llama 2, Mistral), <|user|> / <|assistant|> (Zephyr). An empty
// src is Plain; a template with none of the markers is an error (the
// caller may fall back to Plain and say so).
func RecognizeTemplate(src string) (TemplateKind, error) {
	switch {
	case strings.TrimSpace(src) == "":
		return Plain, nil
	case strings.Contains(src, "<|start_header_id|>"):
		return Llama3, nil
	case strings.Contains(src, "<|im_start|>"):
		return ChatML, nil
	case strings.Contains(src, "[INST]"):
		return Llama2, nil
	case strings.Contains(src, "<|user|>") || strings.Contains(src, "<|assistant|>"):
		return Zephyr, nil
	}
	return Plain, fmt.Errorf("chat template not recognised (none of the Llama-3, ChatML, Llama-2 or Zephyr markers)")
}

// Render writes the prompt text of messages in template kind, ending where
// the assistant's reply begins. The begin-of-sequence token is not written:
// the tokenizer adds it, as for any prompt. eos is the text of the model's
// end-of-sequence token (Llama 2 and Zephyr close turns with it).
func Render(kind TemplateKind, messages []Message, eos string) string {
	var b strings.Builder
	switch kind {
	case Llama3:
		for _, m := range messages {
			fmt.Fprintf(&b, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", m.Role, strings.TrimSpace(m.Content))
		}
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	case ChatML:
		for _, m := range messages {
			fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		}
		b.WriteString("<|im_start|>assistant\n")
	case Llama2:
		sys := ""
		if len(messages) > 0 && messages[0].Role == "system" {
			sys, messages = messages[0].Content, messages[1:]
		}
		first := true
		for _, m := range messages {
			switch m.Role {
			case "assistant":
				fmt.Fprintf(&b, " %s %s", strings.TrimSpace(m.Content), eos)
			default:
				c := strings.TrimSpace(m.Content)
				if first && sys != "" {
					c = "<<SYS>>\n" + strings.TrimSpace(sys) + "\n<</SYS>>\n\n" + c
				}
				if !first {
					b.WriteString("<s>")
				}
				fmt.Fprintf(&b, "[INST] %s [/INST]", c)
				first = false
			}
		}
	case Zephyr:
		for _, m := range messages {
			fmt.Fprintf(&b, "<|%s|>\n%s%s\n", m.Role, m.Content, eos)
		}
		b.WriteString("<|assistant|>\n")
	default:
		for _, m := range messages {
			fmt.Fprintf(&b, "<|%s|>\n%s\n", m.Role, m.Content)
		}
		b.WriteString("<|assistant|>\n")
	}
	return b.String()
}

// LoadChatTemplate reads the chat template a checkpoint carries: a Hugging
// Face folder's chat_template.jinja or tokenizer_config.json
// "chat_template" (a string, or a list of named templates of which
// "default" is taken), or a GGUF file's tokenizer.chat_template. It returns
// "" when there is none (a llama2.c checkpoint never has one).
func LoadChatTemplate(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("chat template of %s: %w", path, err)
	}
	if st.IsDir() {
		if b, err := os.ReadFile(filepath.Join(path, "chat_template.jinja")); err == nil {
			return string(b), nil
		}
		cfgPath := filepath.Join(path, "tokenizer_config.json")
		b, err := os.ReadFile(cfgPath)
		if os.IsNotExist(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("chat template: %s: %w", cfgPath, err)
		}
		var cfg struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return "", fmt.Errorf("chat template: %s: %w", cfgPath, err)
		}
		return parseTemplateField(cfgPath, cfg.ChatTemplate)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("chat template of %s: %w", path, err)
	}
	var magic [4]byte
	_, err = f.Read(magic[:])
	f.Close()
	if err != nil || string(magic[:]) != "GGUF" {
		return "", nil
	}
	gf, err := gguf.Open(path)
	if err != nil {
		return "", fmt.Errorf("chat template: %w", err)
	}
	defer gf.Close()
	v, ok := gf.Metadata["tokenizer.chat_template"]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("chat template: gguf %s: tokenizer.chat_template is a %T, not a string", path, v)
	}
	return s, nil
}

// parseTemplateField reads tokenizer_config.json's chat_template value.
func parseTemplateField(file string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("chat template: %s: chat_template is neither a string nor a list of named templates", file)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}
