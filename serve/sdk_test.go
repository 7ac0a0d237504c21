package serve

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
)

// TestOpenAISDK drives the server with the official OpenAI Go SDK:
// completions and chat, streaming and not, greedy text checked against the
// single-sequence reference.
func TestOpenAISDK(t *testing.T) {
	ck := openStories(t)
	s, hs := newTestServer(t, ck, Options{})
	client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx := context.Background()
	const prompt, n = "Once upon a time", 40
	_, want := greedyReference(t, ck.Model, ck.Tokenizer, nil, prompt, n)

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != "stories260K" {
			t.Errorf("models %+v", page.Data)
		}
	})

	cparams := openai.CompletionNewParams{
		Model:       "stories260K",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(n),
		Temperature: openai.Float(0),
	}
	t.Run("completion", func(t *testing.T) {
		c, err := client.Completions.New(ctx, cparams)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 || c.Choices[0].Text != want {
			t.Fatalf("choices %+v, want text %q", c.Choices, want)
		}
		if c.Usage.PromptTokens == 0 || c.Usage.CompletionTokens == 0 || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
			t.Errorf("usage %+v", c.Usage)
		}
		if c.Object != "text_completion" || c.Choices[0].FinishReason == "" {
			t.Errorf("object %q, finish %q", c.Object, c.Choices[0].FinishReason)
		}
	})
	t.Run("completion-stream", func(t *testing.T) {
		p := cparams
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		st := client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		chunks, finish, usage := 0, "", int64(0)
		for st.Next() {
			c := st.Current()
			chunks++
			for _, ch := range c.Choices {
				text.WriteString(ch.Text)
				if ch.FinishReason != "" {
					finish = string(ch.FinishReason)
				}
			}
			if c.Usage.TotalTokens > 0 {
				usage = c.Usage.CompletionTokens
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != want || chunks < 3 || finish == "" || usage == 0 {
			t.Errorf("streamed %q in %d chunks, finish %q, usage %d; want %q", text.String(), chunks, finish, usage, want)
		}
	})

	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You tell stories."), openai.UserMessage("Tell me about a cat.")}
	chatParams := openai.ChatCompletionNewParams{Model: "stories260K", Messages: msgs, MaxCompletionTokens: openai.Int(n), Temperature: openai.Float(0), Seed: openai.Int(7)}
	_, wantChat := greedyReference(t, ck.Model, ck.Tokenizer, nil,
		Render(Plain, []Message{{"system", "You tell stories."}, {"user", "Tell me about a cat."}}, ""), n)
	t.Run("chat", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, chatParams)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 || c.Choices[0].Message.Content != wantChat || c.Choices[0].Message.Role != "assistant" {
			t.Fatalf("choices %+v, want %q", c.Choices, wantChat)
		}
		if c.Usage.CompletionTokens == 0 {
			t.Errorf("usage %+v", c.Usage)
		}
	})
	t.Run("chat-stream", func(t *testing.T) {
		p := chatParams
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		st := client.Chat.Completions.NewStreaming(ctx, p)
		acc := openai.ChatCompletionAccumulator{}
		for st.Next() {
			acc.AddChunk(st.Current())
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != wantChat || acc.Choices[0].FinishReason == "" {
			t.Errorf("accumulated %+v, want %q", acc.Choices, wantChat)
		}
		if acc.Usage.CompletionTokens == 0 {
			t.Errorf("usage %+v", acc.Usage)
		}
	})
	t.Run("sampled-seeded", func(t *testing.T) {
		p := chatParams
		p.Temperature, p.TopP = openai.Float(0.9), openai.Float(0.9)
		a, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if a.Choices[0].Message.Content != b.Choices[0].Message.Content {
			t.Errorf("seed 7 sampled %q then %q", a.Choices[0].Message.Content, b.Choices[0].Message.Content)
		}
	})
	t.Run("error", func(t *testing.T) {
		p := cparams
		p.N = param.NewOpt[int64](2)
		_, err := client.Completions.New(ctx, p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "n" {
			t.Errorf("n=2: %v, want a 400 about n", err)
		}
	})
	if a := s.ActiveSequences(); a != 0 {
		t.Errorf("%d active sequences after the SDK calls", a)
	}
}
