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
//	pca[:kF][:vF][:bB[/C]][:sS][:aD0/D1/…][:l]:FILE
//	                     CSKV / MatryoshkaKV-style channel reduction: each
//	                     head's keys and values are kept as binary16
//	                     coordinates along their leading round(F·head_dim)
//	                     principal directions (k ≈ mean + Σ z_i·d_i), fitted
//	                     on calibration text by "terse kvfit" into FILE (a
//	                     PCABasis in JSON). Scores are taken in the
//	                     projected space (the query is projected once per
//	                     call), values are summed as coordinates and mapped
//	                     back once. Keys are projected after RoPE, as the
//	                     engine stores them. With bB the coordinates are
//	                     quantized instead (transform coding): B bits per
//	                     channel on average for keys, C for values (default
//	                     B; 1…8, fractional allowed), given
//	                     bit by bit to the kept direction of largest
//	                     variance·4^−bits (at most 8 each), each coordinate a
//	                     uniform quantizer centred on 0 with the
//	                     Gaussian-optimal step for its bits and fitted
//	                     variance; no per-token scale. sS keeps the first S
//	                     positions (the attention sinks, at most 64) whole
//	                     in binary16 besides; aD0/D1/… adds D_l bits per
//	                     channel to layer l's keys and values (one offset
//	                     per layer); l codes each coordinate with
//	                     the Lloyd–Max levels of a Gaussian of its fitted
//	                     variance instead of the uniform quantizer.
//	                     "terse kvfit --weighted" fits the directions for
//	                     the error downstream instead of the plain squared
//	                     error (PCAFit.WeightedBasis): keys in the metric of
//	                     the queries' second moment E[q·qᵀ], values in that
//	                     of the head's output projection W_oᵀ·W_o; rows are
//	                     then projected on one set of directions and
//	                     rebuilt from another (the file's "back").
//	                     Defaults: k0.5, v0.5, binary16 coordinates, s0.
//	                     Bytes counts the coded rows and the float32 means
//	                     and directions the cache holds (the basis is a
//	                     per-model constant, the same for every sequence;
//	                     for k1:v1 on head_dim 64 it adds 4 bits per
//	                     element at n_ctx 512, 0.5 at 4096; twice that for
//	                     a weighted basis, which holds back directions).
//	sink[:S][:wW][+CACHE]
//	                     StreamingLLM (Xiao et al. 2023, "Efficient Streaming
//	                     Language Models with Attention Sinks"): each query
//	                     sees the first S positions and the latest W
//	                     (itself included). Keys keep the RoPE positions
//	                     they were rotated with when stored, as the paper's
//	                     simple variant on already-rotated keys does (no
//	                     re-rotation to cache-relative positions).
//	                     Defaults: 4, w256.
//	h2o[:B][:rP][+CACHE] H2O (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle
//	                     for Efficient Generative Inference"): a budget of B
//	                     positions (a fraction of the capacity up to 1, a
//	                     count above), P percent of it the most recent
//	                     positions, the rest those with the largest
//	                     attention weight accumulated over the queries so
//	                     far; past the budget, the kept position outside
//	                     the recent window with the least accumulated
//	                     weight is evicted for good. State is per query
//	                     head (the paper's multi-head setting; a GQA model
//	                     would keep the union of its group's sets).
//	                     Defaults: 0.5, r50.
//	zip[:hH][:lL][:fF][:gG][:sS][:p]
//	                     ZipCache (He et al. 2024, "ZipCache: Accurate and
//	                     Efficient KV Cache Quantization with Salient Token
//	                     Identification"): token-wise quantization, H bits
//	                     for the fraction F of tokens with the highest
//	                     normalized attention (attention received over the
//	                     number of queries that could see the token), L for
//	                     the rest; asymmetric binary16 scale and minimum per
//	                     G channels. A token's saliency at layer l comes from
//	                     layer l−1's attention of the same pass (the cache
//	                     stores a layer's keys before its attention runs; at
//	                     layer 0, from layer 0 in earlier passes; none yet:
//	                     L bits). Rows are rotated (randomized Hadamard)
//	                     before quantization unless p is given, in place of
//	                     ZipCache's channel-separable divisors. The first S
//	                     positions stay binary16. Defaults: h4, l2, f0.4,
//	                     g32, s0.
//	stair[:bB1/B2/…][:wW1/W2/…][:gG][:sS][:p]
//	                     staircase (SAQ's): the newest W1 positions at B1
//	                     bits, the W2 before them at B2, …, older ones at the
//	                     last band's bits, requantized from their stored form
//	                     as they age; rows quantized token-wise as zip's.
//	                     Defaults: b4/2, w128 per band boundary, g32, s0.
//	gear[:bB][:gG][:oO][:rR][:cC]
//	                     GEAR (Kang et al. 2024, "GEAR: An Efficient KV Cache
//	                     Compression Recipe for Near-Lossless Generative
//	                     Inference of LLM"): per chunk of C positions, keys
//	                     and values as D̂ + S + L: O per cent of each row's
//	                     entries (the extremes) kept as binary16 outliers
//	                     with their channel, the rest quantized token-wise to
//	                     B bits in groups of G, and a rank-R binary16
//	                     factorization of the chunk's residual; the open
//	                     chunk stays binary16. Defaults: b4, g32, o2, r2,
//	                     c64.
//	rq[:kB][:vB][:sS][:p]
//	                     rotated rows with a Gaussian codebook: each KV
//	                     head's key and value is rotated by a randomized
//	                     Walsh–Hadamard transform (keys after RoPE; q·k is
//	                     unchanged, so scores rotate the query once and
//	                     value sums are rotated back once), which spreads
//	                     outlier channels so that a row's channels are
//	                     near-Gaussian with one variance; the row is then
//	                     stored as one one-byte scale (a power of 2^(1/8)
//	                     near its root mean square refitted by least
//	                     squares, the best of three) and one
//	                     Lloyd–Max code per channel (the optimal quantizer
//	                     of a unit Gaussian, Max 1960). B is bits per
//	                     element, 1 to 8 with fractions (⌈B⌉ bits for a
//	                     share of the channels, ⌊B⌋ for the rest) or 16
//	                     (binary16), for every layer or one per layer
//	                     ("k4/3/3/…"); v defaults to k's. The first S
//	                     positions stay binary16 (the attention sink); p
//	                     turns the rotation off; m subtracts a running mean
//	                     key (of the stored keys of positions 1…31 from
//	                     position 32 on, of 1…127 from 128 on; softmax
//	                     does not see it, scores add q·mean back once per
//	                     query). Defaults: k3, v = k, s0, no m.
//	                     On pdtext-llama-28m (llama.cpp protocol, n_ctx
//	                     512) the early layers are the sensitive ones and
//	                     keys more than values; rates allocated from a
//	                     sweep of one layer at 3 bits at a time,
//	                     b_l = B + ½·log2(kld_l / geometric mean), are
//	                     rq:k5.125/5/4.25/4.375/4.375/4.375/4/4.375:
//	                     v5/4.875/4/4.125/4.125/4.125/3.75/4.125 (4.5 bits
//	                     per element) and rq:k3.625/3.5/2.75/2.875/2.875/
//	                     2.875/2.5/2.875:v3.5/3.375/2.5/2.625/2.625/2.625/
//	                     2.25/2.625 (3.0); m measured worse there.
//	cachegen[:qB][:cC][:kX][:vX][:eX][:gG][:d][:s][:tFILE]
//	                     CacheGen (Liu et al. 2024, "CacheGen: KV Cache
//	                     Compression and Streaming for Fast Large Language
//	                     Model Serving"; package codec): every full chunk
//	                     of C positions of a layer is entropy-coded as one
//	                     bitstream per KV head of keys and of values, at
//	                     quality B bits (bins of 2^(3−B) of the root mean
//	                     square deviation of a head's channels; X bits
//	                     more or less for keys, values; eX: layer l's
//	                     values get X·2^−l extra, its keys a quarter of
//	                     that); keys are coded before RoPE; gG predicts
//	                     tokens from anchors every G tokens, as the paper
//	                     does, with a bin per channel, instead of from
//	                     channel means. The open chunk
//	                     stays binary16 until it fills. Scores and WeightedSum decode a
//	                     chunk's plane into their scratch on every call;
//	                     d keeps each chunk decoded beside its bitstream
//	                     instead (float32, counted in Bytes), which is as
//	                     fast as f32 and sees the same values. Defaults:
//	                     q7.5, c64, k0, v0, e1.5. eval reports its size all
//	                     in (kv.CodedSizer): the rate of the bitstreams it
//	                     coded plus the open chunk's bytes spread over the
//	                     window.
//	                     tFILE (last; FILE may hold colons) codes each
//	                     head's keys (before RoPE) and values as their
//	                     coordinates in the basis FILE (a PCABasis that
//	                     CacheGenFit writes: weighted, keys fitted before
//	                     RoPE), every coordinate of a head in one bin, the
//	                     layer's multiplier (as above) times √(mean
//	                     variance) of the basis: reverse water-filling in
//	                     the metric that matters downstream (codec step
//	                     planes). "terse kvfit --cachegen" writes FILE. The
//	                     transform is a model constant, built once per
//	                     spec and model and shared by all its caches, as
//	                     the weights are: not in the cache's size, reported
//	                     apart (kv.SharedSizer, eval's kv_shared_bytes).
//	                     s (with t) codes the coordinates under static
//	                     models, a Gaussian of each coordinate's fitted
//	                     deviation (codec static planes), instead of
//	                     storing each plane's channel means and models:
//	                     small chunks then cost almost nothing extra, so
//	                     the open chunk can be small. On pdtext-llama-28m
//	                     cachegen:q4.45:c8:s:tFILE is 2.95 bits per element
//	                     all in at n_ctx 512 with KLD 0.0055, under half
//	                     q4_0's at 4.5 bits.
//
//	snapkv[:B][:wW][:kK][+CACHE]
//	                     SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You
//	                     are Looking for Before Generation"): a budget of B
//	                     positions (as h2o's); past it, the position with
//	                     the fewest votes — attention from the last W
//	                     queries (the observation window), average-pooled
//	                     over K neighbouring positions — is evicted, the
//	                     last W positions always kept. SnapKV selects once
//	                     at the end of the prompt; here the budget holds at
//	                     every query, so it selects as it goes (one position
//	                     per step past the budget). Defaults: 0.5, w32, k5.
//	ems[:B][:wW][:tT][:s][:e][+CACHE]
//	                     EMS (Li et al. 2024, "EMS: Adaptive Evict-then-Merge
//	                     Strategy for Head-wise KV Cache Compression Based on
//	                     Global-Local Importance"): a budget of B entries per
//	                     query head; past it, the entry of the least
//	                     global-local score outside the last W positions
//	                     leaves: its accumulated attention over the number of
//	                     queries that saw it (global, free of the causal
//	                     mask's bias) plus its mean attention from the last W
//	                     queries (local). Evict-then-merge: the leaving entry
//	                     is merged into the kept entry whose mean key (as
//	                     appended, before CACHE's quantization) has the
//	                     largest cosine similarity with its own, when that
//	                     is at least T (a redundant head merges), and is
//	                     dropped otherwise (EMS's zero class: a sparse head
//	                     evicts), so each head finds its own split of the
//	                     budget between kept and merged tokens. A merged
//	                     entry's key and value are weighted means of its
//	                     positions' stored keys and values, the two merged
//	                     entries weighed by the positions they stand for
//	                     (plain means), or by their global-local scores with
//	                     s; it keeps the slot of the entry merged into and
//	                     takes over the other's accumulated attention and
//	                     votes. In the softmax an entry of n positions
//	                     scores q·k̄ + ln n: it weighs as n copies of its
//	                     mean key, so n equal keys are represented exactly.
//	                     Its score and value sum come from the stored
//	                     positions (q·k̄ = Σ α_p q·k_p), so it composes with
//	                     any CACHE. Ties go to the earliest position. The
//	                     similarity measure, the threshold and the merge
//	                     weights are this package's choices, not taken
//	                     from the paper's text. e turns
//	                     merging off: the global-local eviction alone (what
//	                     ems meant before merging; "ems:B:wW" now means the
//	                     full method). Budgets are per head, not shared
//	                     across heads (heads run concurrently). The float32
//	                     copy of the keys that similarities are measured on
//	                     is counted in the cache's bytes. Defaults:
//	                     0.5, w32, t0.4 (chosen on calibration text).
//
// An eviction spec stores its positions in CACHE (default f32; any spec
// above but another eviction): "h2o:0.5+q8_0". Evicted positions are
// masked out of each query's softmax (weight exactly 0) through
// model.AttentionMasker. This version measures what eviction costs in
// quality only: it still stores evicted positions in CACHE and runs
// attention over them, so its Bytes (and eval's kv_bytes_per_token) is
// CACHE's full memory; the kept budget's bytes, what a compacting cache
// would hold, are the cache's KeptBytes.
//
// Every cache's Bytes counts everything it holds for its capacity: codes,
// scales, minimums and the full-precision residual window. BitsPerElement
// divides that by the capacity's key and value elements.
package kv
