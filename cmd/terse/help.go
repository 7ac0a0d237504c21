package main

// summary is the one line each command's -h and terse's usage start with.
func summary(name string) string {
	switch name {
	case "bench":
		return "prefill and decode speed, like llama-bench, against the memory roofline"
	case "compress":
		return "quantize a model to a GGUF file (llama.cpp presets, imatrix, GPTQ, or a searched allocation for --target-size)"
	case "eval":
		return "perplexity and KL-divergence of a model on a text"
	case "generate":
		return "stream text from a prompt"
	case "inspect":
		return "architecture, parameters and per-tensor types of a checkpoint"
	case "report":
		return "an HTML page of a model's rate–distortion curve and searched allocations"
	case "serve":
		return "the OpenAI-compatible HTTP API over a model, batched continuously"
	case "kvfit":
		return "fit the PCA key/value channel projections of a pca:kF:vF:FILE cache on calibration text"
	case "tokenize":
		return "token ids of a text"
	case "version":
		return "terse's version, the Go toolchain and the SIMD kernels in use"
	}
	return ""
}

// example is a command line that shows each command at work.
func example(name string) string {
	switch name {
	case "bench":
		return "terse bench --model model.gguf -p 512 -n 128"
	case "compress":
		return "terse compress --model hf-folder --type Q4_K_M --calib calib.txt --method gptq --out model-Q4_K_M.gguf"
	case "eval":
		return "terse eval --model model-Q4_K_M.gguf --data wiki.test.raw --base-logits base.logits"
	case "generate":
		return `terse generate --model model.gguf --prompt "Once upon a time" -n 64 --temp 0.8 --stop "\n\n"`
	case "inspect":
		return "terse inspect --model model.gguf"
	case "report":
		return "terse report --out report.html --in 'eval-*.json' --in search.json"
	case "serve":
		return "terse serve --model model.gguf --addr 127.0.0.1:8080 --kv q8_0 --max-seqs 16"
	case "kvfit":
		return "terse kvfit --model hf-folder --text calib.txt --out basis.json && terse eval --model hf-folder --kv pca:k0.5:v0.5:basis.json"
	case "tokenize":
		return `terse tokenize --model hf-folder --text "Hello, world"`
	case "version":
		return "terse version --json"
	}
	return ""
}
