// Package eval measures what a compression costs: perplexity of a model on a
// token stream, and how far its next-token distributions drift from a base
// model's (KL-divergence, top-1 agreement, Δp), live or against a saved
// base-logits file.
//
// # Definitions
//
// The definitions follow llama.cpp's tools/perplexity/perplexity.cpp:
//
//   - NLL of a prediction is −log softmax(logits)[next token], in nats; PPL is
//     exp(mean NLL). Its ± is PPL·σ/√(n−1), with σ² = mean(NLL²) − mean(NLL)²,
//     the standard error of the mean NLL carried through exp.
//   - KLD(base‖model) = Σ_i p_base(i)·(log p_base(i) − log p_model(i)) per
//     scored position; reported as mean ± standard error (same formula as
//     the NLL's), and percentiles by linear interpolation between closest
//     ranks (index f·(n−1) in the sorted values, llama.cpp's convention).
//   - Same top-1: argmax of the two logit rows agree; ± is √(p(1−p)/(n−1)).
//   - Δp = p_model(next) − p_base(next); RMS Δp = √mean(Δp²), with ± from the
//     standard error of mean(Δp²) (d√x = dx/(2√x)).
//   - ln(PPL(Q)/PPL(base)) = mean NLL − mean NLL(base), whose ± combines the
//     two standard errors and their covariance; Cor is the Pearson correlation
//     of the per-token NLLs of model and base.
//
// All accumulation is in float64 and log-softmax subtracts the row maximum
// first.
//
// # Protocols
//
// [ProtocolAll] cuts the stream into non-overlapping windows of Ctx tokens
// from the start and scores every prediction in each (Ctx−1 per window): the
// protocol of the shared reference numbers. [ProtocolLlamaCpp] is
// llama-perplexity's: the same windows ("chunks"), the first token of each
// replaced by BOS, and only the predictions made at positions Ctx/2 … Ctx−2
// scored (Ctx−1−Ctx/2 per chunk: 255 of 512).
//
// [ProtocolRepeat] is a long-context test that an evicting or lossy KV
// cache cannot fake: each window is BOS, a passage of N = (Ctx−1)/2
// tokens, and the same passage again (2N+1 tokens: N = 255 and 511 tokens
// at Ctx 512), scoring only the second copy's tokens 2…N (N−1 per window).
// A model that still sees the first copy predicts them almost perfectly.
// Passages are consecutive, non-overlapping N-token pieces of the stream;
// the Result's Ctx is the window's 2N+1.
//
// # Base-logits files
//
// A base-logits file (written through Options.SaveLogits, read through
// Options.BaseLogits or [NewLogitsReader]; layout in logitsfile.go) keeps,
// per scored position, the base model's top-K log-probs, the log of the mass
// outside them, and S ids sampled from that tail mass (systematic sampling)
// with their log-probs, so it stays small for large vocabularies (about
// 4 bytes per entry: K=64, S=32 is ~390 bytes per position at 32K ids,
// against llama.cpp's 2 bytes per vocabulary entry).
//
// KLD against the file is the chain rule KLD = KL of the distributions
// coarsened to K+1 bins (the stored ids plus one tail bin) + p_tail·KL(p|tail
// ‖ q|tail). The first term is exact; alone (S = 0) it is a lower bound on
// the true KLD, 20–40% low on heavy-tailed 32K-vocabulary rows. The second
// is estimated from the samples as the mean of r−1−ln r, r = q|tail/p|tail:
// unbiased (E r = 1), never negative, and second order in the log-ratio, so
// a few dozen samples bring the mean within about 1% (measured in
// TestLogitsFileZipf); per-position values carry sampling noise. The stored
// log-probs are quantized to 16 bits over their range (at most range/131070
// nats each) and renormalised, which makes that error second order too.
package eval
