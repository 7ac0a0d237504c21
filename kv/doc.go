// Package kv holds the compressed KV caches of terse: implementations of
// model.KVCache that store a sequence's keys and values in fewer bits and
// run attention on that stored form (scores against quantized keys, values
// dequantized group by group as they are summed).
//
// A cache is named by a spec string, parsed by Parse:
//
//	f32                  model.FloatCache, the uncompressed reference
//	f16, bf16            binary16 / bfloat16 keys and values
//	q8_0, q4_0, q4_1,    llama.cpp's cache types (llama-perplexity -ctk T -ctv T):
//	q5_0, q5_1, iq4_nl   each key and value row quantized in 32-element blocks
//	                     along the head dimension with ggml's reference
//	                     quantizer; scores are integer dot products of a
//	                     Q8_0-quantized query with the key blocks, as
//	                     ggml's flash attention does them
//	kivi[:kBvB][:gG][:rR]
//	                     KIVI (Liu et al. 2024, "KIVI: A Tuning-Free
//	                     Asymmetric 2bit Quantization for KV Cache"): keys
//	                     quantized per channel over groups of G tokens,
//	                     values per token over groups of G channels, B bits
//	                     each with an asymmetric binary16 scale and minimum
//	                     per group; the newest tokens stay in binary16 (the
//	                     paper's full precision): keys until R of them
//	                     accumulate (then quantized together), values the
//	                     last R. Defaults: k2v2, g32, r128 (the paper's);
//	                     bits 2, 4 or 8; R a multiple of G (0: keys wait
//	                     for one group only, values are quantized at once).
//
// Every cache's Bytes counts everything it holds for its capacity: codes,
// scales, minimums and the full-precision residual window. BitsPerElement
// divides that by the capacity's key and value elements.
package kv
