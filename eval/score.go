package eval

import (
	"errors"
	"math"
	"slices"
)

// scorer turns logit rows into the accumulated statistics of a run. It owns
// every vocabulary-sized buffer so that rows are scored without allocation.
type scorer struct {
	vocab   int
	p       plan
	compare bool
	perPos  bool

	expsM []float64 // exp(l−max) of the model row, for the logits writer
	expsB []float64 // exp(l−max) of a live base row
	stamp []uint32  // stamp[id] == gen: id is stored in the current base-file row
	gen   uint32
	brow  baseRow

	n                         int
	sNLL, sNLL2               float64
	sNLLb, sNLLb2, sNLLNLLb   float64
	sKLD, sKLD2               float64
	sDp, sDp2, sDp4, maxAbsDp float64
	same                      int
	kld                       []float64
	nllPos, kldPos            []float32
	nonFiniteKLD              int
}

func newScorer(vocab int, p plan, live, file, perPos bool) *scorer {
	s := &scorer{vocab: vocab, p: p, compare: live || file, perPos: perPos}
	s.expsM = make([]float64, vocab)
	if live {
		s.expsB = make([]float64, vocab)
	}
	if file {
		s.stamp = make([]uint32, vocab)
	}
	if s.compare {
		s.kld = make([]float64, 0, p.windows*p.scoredPerWindow())
	}
	return s
}

var errNonFinite = errors.New("non-finite logits")

// rowMax returns the largest logit and the first index holding it.
func rowMax(row []float32) (float32, int) {
	mx, am := row[0], 0
	for i, v := range row {
		if v > mx {
			mx, am = v, i
		}
	}
	return mx, am
}

// sumExp returns Σ exp(row[i]−mx), storing each term in exps.
func sumExp(row []float32, mx float32, exps []float64) float64 {
	m := float64(mx)
	exps = exps[:len(row)]
	var sum float64
	for i, v := range row {
		e := math.Exp(float64(v) - m)
		exps[i] = e
		sum += e
	}
	return sum
}

// sumExpTail is sumExp that also returns the sum over ids not stamped gen.
func sumExpTail(row []float32, mx float32, exps []float64, stamp []uint32, gen uint32) (sum, tail float64) {
	m := float64(mx)
	exps = exps[:len(row)]
	stamp = stamp[:len(row)]
	for i, v := range row {
		e := math.Exp(float64(v) - m)
		exps[i] = e
		sum += e
		if stamp[i] != gen {
			tail += e
		}
	}
	return sum, tail
}

// lse returns the log-sum-exp of a row from its max and Σ exp(l−max).
func lse(mx float32, sum float64) (float64, error) {
	v := float64(mx) + math.Log(sum)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errNonFinite
	}
	return v, nil
}

func (s *scorer) addNLL(nll float64) {
	s.n++
	s.sNLL += nll
	s.sNLL2 += nll * nll
	if s.perPos {
		s.nllPos = append(s.nllPos, float32(nll))
	}
}

func (s *scorer) addCompare(nll, nllBase, kld float64, same bool) {
	s.sNLLb += nllBase
	s.sNLLb2 += nllBase * nllBase
	s.sNLLNLLb += nll * nllBase
	if math.IsNaN(kld) || math.IsInf(kld, 0) {
		s.nonFiniteKLD++
		kld = math.MaxFloat32
	}
	s.sKLD += kld
	s.sKLD2 += kld * kld
	s.kld = append(s.kld, kld)
	if s.perPos {
		s.kldPos = append(s.kldPos, float32(kld))
	}
	dp := math.Exp(-nll) - math.Exp(-nllBase)
	s.sDp += dp
	s.sDp2 += dp * dp
	s.sDp4 += dp * dp * dp * dp
	s.maxAbsDp = max(s.maxAbsDp, math.Abs(dp))
	if same {
		s.same++
	}
}

// plain scores one model row predicting target.
func (s *scorer) plain(row []float32, target int, lw *logitsWriter) error {
	mx, am := rowMax(row)
	sum := sumExp(row, mx, s.expsM)
	l, err := lse(mx, sum)
	if err != nil {
		return err
	}
	s.addNLL(l - float64(row[target]))
	if lw != nil {
		return lw.writeRow(row, s.expsM, mx, sum, l, am, target)
	}
	return nil
}

// live scores a model row against a base row over the whole vocabulary.
func (s *scorer) live(row, base []float32, target int, lw *logitsWriter) error {
	mx, am := rowMax(row)
	sum := sumExp(row, mx, s.expsM)
	l, err := lse(mx, sum)
	if err != nil {
		return err
	}
	bmx, bam := rowMax(base)
	bsum := sumExp(base, bmx, s.expsB)
	bl, err := lse(bmx, bsum)
	if err != nil {
		return errors.New("base: non-finite logits")
	}
	var kld float64
	inv := 1 / bsum
	for i, e := range s.expsB[:len(base)] {
		if e == 0 {
			continue
		}
		kld += e * ((float64(base[i]) - bl) - (float64(row[i]) - l))
	}
	kld *= inv
	nll := l - float64(row[target])
	s.addNLL(nll)
	s.addCompare(nll, bl-float64(base[target]), kld, am == bam)
	if lw != nil {
		return lw.writeRow(row, s.expsM, mx, sum, l, am, target)
	}
	return nil
}

// file scores a model row against s.brow, the base row read from a file.
func (s *scorer) file(row []float32, target int, lw *logitsWriter) error {
	b := &s.brow
	s.gen++
	if s.gen == 0 { // wrapped: clear stale stamps
		clear(s.stamp)
		s.gen = 1
	}
	for _, id := range b.ids {
		s.stamp[id] = s.gen
	}
	mx, am := rowMax(row)
	sum, tail := sumExpTail(row, mx, s.expsM, s.stamp, s.gen)
	l, err := lse(mx, sum)
	if err != nil {
		return err
	}
	var kld float64
	for k, id := range b.ids {
		lp := b.lp[k]
		kld += math.Exp(lp) * (lp - (float64(row[id]) - l))
	}
	if !math.IsInf(b.lpTail, -1) {
		lqTail := math.Log(tail) - math.Log(sum)
		if tail == 0 {
			lqTail = math.Log(math.SmallestNonzeroFloat64)
		}
		pTail := math.Exp(b.lpTail)
		kld += pTail * (b.lpTail - lqTail)
		// The divergence inside the tail bin, KL(p|tail ‖ q|tail), estimated
		// from samples i ~ p|tail as the mean of r − 1 − ln r with
		// r = q|tail(i)/p|tail(i): unbiased (E r = 1) and never negative.
		if len(b.sids) > 0 && tail > 0 {
			logTail := math.Log(tail)
			var acc float64
			for k, id := range b.sids {
				lr := (float64(row[id]) - float64(mx) - logTail) - (b.slp[k] - b.lpTail)
				acc += math.Expm1(lr) - lr
			}
			kld += pTail * acc / float64(len(b.sids))
		}
	}
	nll := l - float64(row[target])
	s.addNLL(nll)
	s.addCompare(nll, -b.lpTarget, kld, am == b.top1)
	if lw != nil {
		return lw.writeRow(row, s.expsM, mx, sum, l, am, target)
	}
	return nil
}

// percentile returns the value at fraction f of sorted values by linear
// interpolation between closest ranks (llama.cpp's convention: index
// f·(n−1)); f = 0.5 gives the usual median.
func percentile(sorted []float64, f float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if f <= 0 {
		return sorted[0]
	}
	if f >= 1 {
		return sorted[n-1]
	}
	p := f * float64(n-1)
	i := int(p)
	p -= float64(i)
	return (1-p)*sorted[i] + p*sorted[min(i+1, n-1)]
}

// result turns the accumulators into a Result.
func (s *scorer) result() *Result {
	r := &Result{
		Protocol: s.p.proto.String(),
		Ctx:      s.p.ctx,
		Windows:  s.p.windows,
		Tokens:   s.n,
	}
	var se float64
	r.NLL, se = meanSE(s.sNLL, s.sNLL2, s.n)
	r.NLLPM = se
	r.PPL = math.Exp(r.NLL)
	r.PPLPM = r.PPL * se
	if s.perPos {
		r.PerPositionNLL = s.nllPos
	}
	if !s.compare || s.n == 0 {
		return r
	}
	c := &Comparison{}
	n := float64(s.n)
	var seB float64
	c.BaseNLL, seB = meanSE(s.sNLLb, s.sNLLb2, s.n)
	c.BasePPL = math.Exp(c.BaseNLL)
	c.BasePPLPM = c.BasePPL * seB
	var cov float64
	if s.n > 1 {
		cov = (s.sNLLNLLb/n - (s.sNLL/n)*(s.sNLLb/n)) / (n - 1)
	}
	if se > 0 && seB > 0 {
		c.NLLCorr = cov / (se * seB)
	}
	c.LnPPLRatio = r.NLL - c.BaseNLL
	c.LnPPLRatioPM = math.Sqrt(max(0, se*se+seB*seB-2*cov))
	c.PPLRatio = math.Exp(c.LnPPLRatio)
	c.PPLRatioPM = c.PPLRatio * c.LnPPLRatioPM
	c.PPLDiff = r.PPL - c.BasePPL
	c.PPLDiffPM = math.Sqrt(max(0, r.PPLPM*r.PPLPM+c.BasePPLPM*c.BasePPLPM-2*r.PPL*c.BasePPL*cov))

	c.KLDMean, c.KLDPM = meanSE(s.sKLD, s.sKLD2, s.n)
	slices.Sort(s.kld)
	c.KLDMedian = percentile(s.kld, 0.5)
	c.KLDP90 = percentile(s.kld, 0.90)
	c.KLDP95 = percentile(s.kld, 0.95)
	c.KLDP99 = percentile(s.kld, 0.99)
	c.KLDP999 = percentile(s.kld, 0.999)
	c.KLDMax = s.kld[len(s.kld)-1]
	c.KLDMin = s.kld[0]

	top := float64(s.same) / n
	c.Top1 = 100 * top
	if s.n > 1 {
		c.Top1PM = 100 * math.Sqrt(top*(1-top)/(n-1))
	}
	dpMean, dpSE := meanSE(s.sDp, s.sDp2, s.n)
	c.DeltaPMean, c.DeltaPMeanPM = 100*dpMean, 100*dpSE
	mse, mseSE := meanSE(s.sDp2, s.sDp4, s.n)
	c.DeltaPRMS = 100 * math.Sqrt(mse)
	if mse > 0 {
		c.DeltaPRMSPM = 100 * 0.5 / math.Sqrt(mse) * mseSE
	}
	c.DeltaPMaxAbs = 100 * s.maxAbsDp
	c.NonFiniteKLD = s.nonFiniteKLD
	if s.perPos {
		c.PerPositionKLD = s.kldPos
	}
	r.Comparison = c
	return r
}
