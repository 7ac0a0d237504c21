// Package serve is terse's OpenAI-compatible HTTP server: an http.Handler
// over one model whose scheduler batches every request continuously.
//
// # Routes
//
//   - POST /v1/completions and POST /v1/chat/completions, streaming
//     (server-sent events: one "data: {json}" line per chunk, then
//     "data: [DONE]") and not, with usage in the response (and, streaming,
//     in a last chunk with no choices when stream_options.include_usage is
//     true), as the OpenAI API defines them. Parameters: model (must be the
//     served name), prompt (a string, an array of one string or an array of
//     token ids), messages (string content or text parts), max_tokens and
//     max_completion_tokens (≥ 1; completions default to 16 as the API
//     does, chat to the rest of the context), temperature (0 is greedy),
//     top_p, stop (a string or up to 4; matched in the text, cut, never
//     sent), seed, n (1 only), echo (completions). Generation also ends at
//     the model's end tokens (tokenizer.EndTokens), which are not sent.
//   - GET /v1/models, GET /v1/models/{id}, GET /health (503 while shutting
//     down), GET /metrics (Prometheus text format: prompt and generated
//     token counters, requests by status, tokens/s over the last 10 s,
//     queue length, active sequences, prefix-cache hit rate, and histograms
//     of the time to first token and between tokens).
//
// Errors are the API's object, {"error": {"message", "type", "param",
// "code"}}: 400 for bad JSON or parameters (a prompt that with max_tokens
// does not fit the context is context_length_exceeded), 404 for an
// unknown route or model, 405 for a wrong method, 429 when the queue is
// full, 503 while shutting down, 500 if a handler panicked (each request
// recovers on its own).
//
// # Scheduling
//
// One goroutine owns the model.Engine. Requests wait in a bounded queue;
// each step the scheduler drops sequences whose client went away (freeing
// their caches), admits queued requests into free slots (MaxSeqs), and
// runs one Engine.Forward holding the next token of every decoding
// sequence and prefill chunks of the others, at most PrefillChunk prompt
// tokens per step so that a long prompt does not stall the others. Each
// sequence samples from its own logits and streams through its own
// buffered channel, so a slow client never blocks the scheduler. Text is
// sent only once it is final: no half UTF-8 rune, no tail that may still
// grow into a stop string. Greedy output equals `terse generate --temp 0`
// token for token, alone or batched: decode tokens share one pass, but
// each prefill piece runs alone, so that every row takes the kernel route
// generate's does (see scheduler.step; this holds for MaxSeqs up to the
// kernels' integer-path batch, 16, and the default PrefillChunk of 512).
// A PrefixCache, when set, restores the longest cached prefix of a prompt
// before its prefill (which then starts there) and saves the prompt's
// cache after it.
//
// # Chat templates
//
// The model's own template (LoadChatTemplate reads it from
// chat_template.jinja, tokenizer_config.json or GGUF metadata) is
// recognised by its markers and rendered natively — there is no Jinja
// interpreter. For messages m₁…mₙ, with the begin-of-sequence token added
// by the tokenizer as for any prompt and EOS the text of the model's
// end-of-sequence token:
//
//	llama3: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> … <|start_header_id|>assistant<|end_header_id|>\n\n
//	chatml: <|im_start|>ROLE\nCONTENT<|im_end|>\n … <|im_start|>assistant\n
//	llama2: [INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ASSISTANT EOS<s>[INST] USER [/INST]
//	zephyr: <|ROLE|>\nCONTENTEOS\n … <|assistant|>\n
//	plain:  <|ROLE|>\nCONTENT\n … <|assistant|>\n
//
// The plain template is used when the model has no template, or one that
// is not recognised (with a warning). Llama 3 content is trimmed of
// surrounding space, as its template does; the role "developer" is
// rendered as "system".
package serve
