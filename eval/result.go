package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Result is what Evaluate measured. Probabilities shown as percentages are
// marked so in their field docs; NLLs are in nats per token.
type Result struct {
	Model string `json:"model,omitempty"` // the model evaluated (Options.ModelName)
	// ModelBytes is the size of its files on disk (Options.ModelBytes).
	ModelBytes int64  `json:"model_bytes,omitempty"`
	Data       string `json:"data,omitempty"` // the text it was evaluated on (Options.DataName)

	Protocol string `json:"protocol"` // "all", "llamacpp" or "repeat"
	Ctx      int    `json:"ctx"`      // window length in tokens
	Windows  int    `json:"windows"`  // windows run
	Tokens   int    `json:"tokens"`   // predictions scored

	NLL   float64 `json:"nll"`    // mean negative log-likelihood
	NLLPM float64 `json:"nll_pm"` // standard error of NLL
	PPL   float64 `json:"ppl"`    // exp(NLL)
	PPLPM float64 `json:"ppl_pm"` // PPL·NLLPM, llama.cpp's ±

	Seconds      float64 `json:"seconds"`   // wall time of the run
	TokensPerSec float64 `json:"tok_per_s"` // tokens run through the model (all window tokens) per second

	// PerPositionNLL is the NLL of each scored prediction in order, when
	// Options.PerPosition is set.
	PerPositionNLL []float32 `json:"per_position_nll,omitempty"`

	// KVInfo describes the model's KV cache, when Options.KV gave it. Its
	// fields appear at the top level of the JSON.
	*KVInfo

	// Comparison holds the divergence from a base; nil without one. Its
	// fields appear at the top level of the JSON.
	*Comparison
}

// KVInfo describes the KV cache an evaluated model ran with.
type KVInfo struct {
	Spec string `json:"kv_spec"` // the cache's spec string (package kv)
	// BitsPerElement is the cache's bytes for a full window, in bits per
	// key or value element: codes, scales, zero points and any
	// full-precision window all counted.
	BitsPerElement float64 `json:"kv_bits_per_element"`
	BytesPerToken  float64 `json:"kv_bytes_per_token"` // the same bytes per position of the window
	// SharedBytes is what the cache holds once per model and spec and
	// shares between sequences, as the weights are (a fitted transform's
	// directions): not in BitsPerElement or BytesPerToken. 0 for most
	// caches.
	SharedBytes int64 `json:"kv_shared_bytes,omitempty"`
}

// Comparison is how a model's predictions differ from a base's on the same
// tokens.
type Comparison struct {
	BaseSource string `json:"base"`                 // the base's name or file
	BaseTopK   int    `json:"base_top_k,omitempty"` // entries per position in the base file; 0 for a live base
	// BaseTailSamples is the number of tail samples per position in the base
	// file: with none, KLD is the top-K lower bound; with some, an unbiased
	// estimate of the full KLD.
	BaseTailSamples int `json:"base_tail_samples,omitempty"`

	BaseNLL   float64 `json:"base_nll"`
	BasePPL   float64 `json:"base_ppl"`
	BasePPLPM float64 `json:"base_ppl_pm"`

	PPLRatio     float64 `json:"ppl_ratio"` // PPL/PPL(base)
	PPLRatioPM   float64 `json:"ppl_ratio_pm"`
	LnPPLRatio   float64 `json:"ln_ppl_ratio"` // NLL − NLL(base)
	LnPPLRatioPM float64 `json:"ln_ppl_ratio_pm"`
	PPLDiff      float64 `json:"ppl_diff"` // PPL − PPL(base)
	PPLDiffPM    float64 `json:"ppl_diff_pm"`
	NLLCorr      float64 `json:"nll_corr"` // Pearson correlation of per-token NLLs, −1…1

	KLDMean   float64 `json:"kld_mean"` // mean KLD(base‖model), nats
	KLDPM     float64 `json:"kld_pm"`   // its standard error
	KLDMedian float64 `json:"kld_median"`
	KLDP90    float64 `json:"kld_p90"`
	KLDP95    float64 `json:"kld_p95"`
	KLDP99    float64 `json:"kld_p99"`
	KLDP999   float64 `json:"kld_p999"`
	KLDMax    float64 `json:"kld_max"`
	KLDMin    float64 `json:"kld_min"`

	Top1   float64 `json:"top1"`    // same argmax, percent
	Top1PM float64 `json:"top1_pm"` // percent

	DeltaPRMS    float64 `json:"dp_rms"` // RMS of p(next)−p_base(next), percent
	DeltaPRMSPM  float64 `json:"dp_rms_pm"`
	DeltaPMean   float64 `json:"dp_mean"` // mean Δp, percent
	DeltaPMeanPM float64 `json:"dp_mean_pm"`
	DeltaPMaxAbs float64 `json:"dp_max_abs"` // largest |Δp|, percent

	// NonFiniteKLD counts positions whose KLD was infinite or NaN (the model
	// gave zero probability where the base did not); they enter the
	// statistics as 3.4e38.
	NonFiniteKLD int `json:"kld_nonfinite,omitempty"`

	// PerPositionKLD is the KLD of each scored position, when
	// Options.PerPosition is set.
	PerPositionKLD []float32 `json:"per_position_kld,omitempty"`
}

// WriteJSON writes r as indented JSON followed by a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as an aligned, human-readable table.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, a ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, a...)...)
	}
	scored := "every prediction"
	if r.Protocol == ProtocolLlamaCpp.String() {
		scored = "second half, BOS first"
	}
	if r.Protocol == ProtocolRepeat.String() {
		scored = "BOS, passage, passage: the second copy"
	}
	if r.Data != "" {
		row("data", "%s", r.Data)
	}
	row("protocol", "%s (ctx %d, %d windows, %s)", r.Protocol, r.Ctx, r.Windows, scored)
	row("tokens scored", "%d", r.Tokens)
	row("mean NLL", "%.6f ± %.6f nats", r.NLL, r.NLLPM)
	row("PPL", "%.4f ± %.4f", r.PPL, r.PPLPM)
	if k := r.KVInfo; k != nil {
		row("KV cache", "%s (%.3f bits per element, %.0f bytes per token)", k.Spec, k.BitsPerElement, k.BytesPerToken)
		if k.SharedBytes > 0 {
			row("KV shared", "%d bytes once per model (the transform), besides", k.SharedBytes)
		}
	}
	if r.Seconds > 0 {
		row("speed", "%.0f tok/s (%.1f s)", r.TokensPerSec, r.Seconds)
	}
	if c := r.Comparison; c != nil {
		base := c.BaseSource
		switch {
		case c.BaseTopK > 0 && c.BaseTailSamples > 0:
			base = fmt.Sprintf("%s (file: top-%d + %d tail samples)", base, c.BaseTopK, c.BaseTailSamples)
		case c.BaseTopK > 0:
			base = fmt.Sprintf("%s (file: top-%d; KLD is a lower bound)", base, c.BaseTopK)
		}
		row("base", "%s", base)
		row("PPL(base)", "%.4f ± %.4f", c.BasePPL, c.BasePPLPM)
		row("PPL − PPL(base)", "%+.4f ± %.4f", c.PPLDiff, c.PPLDiffPM)
		row("PPL/PPL(base)", "%.6f ± %.6f", c.PPLRatio, c.PPLRatioPM)
		row("ln(PPL/PPL(base))", "%+.6f ± %.6f", c.LnPPLRatio, c.LnPPLRatioPM)
		row("Cor(NLL, NLL(base))", "%.2f%%", 100*c.NLLCorr)
		row("mean KLD", "%.6f ± %.6f", c.KLDMean, c.KLDPM)
		row("KLD median", "%.6f", c.KLDMedian)
		row("KLD p90 / p95", "%.6f / %.6f", c.KLDP90, c.KLDP95)
		row("KLD p99 / p99.9", "%.6f / %.6f", c.KLDP99, c.KLDP999)
		row("KLD max", "%.6f", c.KLDMax)
		if c.NonFiniteKLD > 0 {
			row("KLD non-finite", "%d positions", c.NonFiniteKLD)
		}
		row("same top-1", "%.3f ± %.3f %%", c.Top1, c.Top1PM)
		row("RMS Δp", "%.3f ± %.3f %%", c.DeltaPRMS, c.DeltaPRMSPM)
		row("mean Δp", "%+.3f ± %.3f %%", c.DeltaPMean, c.DeltaPMeanPM)
		row("max |Δp|", "%.3f %%", c.DeltaPMaxAbs)
	}
	return tw.Flush()
}
