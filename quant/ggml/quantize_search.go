package ggml

// Scale searches shared by the quantizers: ggml's make_qx_quants,
// make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants and
// best_index_int8, in float32 with ggml's order of operations.

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it counts as all zero.
const groupMaxEps = float32(1e-15)

// makeQxQuants fits a symmetric scale to x[:n] for signed levels
// -nmax..nmax-1 (make_qx_quants) and writes the levels, offset by nmax, to
// L. It starts from the scale that maps the largest-magnitude value to
// -nmax; with rmseType 0 it stops there. Otherwise it takes the weighted
// least-squares scale for those levels, then tries the 18 scales
// -(nmax ± 0.1·k)/max (k = 1..9) and keeps whichever levels give the
// largest Σwxl²/Σwl² (the smallest weighted squared error). Weights are qw
// when given, else x² (rmseType 1), 1 (2), |x| (3) or √|x| (4). A negative
// rmseType returns early with the mean of the least-squares and the
// starting scale. The returned scale multiplies the signed level.
func makeQxQuants(n, nmax int, x []float32, L []int8, rmseType int, qw []float32) float32 {
	var max, amax float32
	for i := 0; i < n; i++ {
		ax := abs32(x[i])
		if ax > amax {
			amax = ax
			max = x[i]
		}
	}
	if amax < groupMaxEps {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	nm := int32(nmax)
	iscale := float32(-nmax) / max
	if rmseType == 0 {
		for i := 0; i < n; i++ {
			l := nearestInt(iscale * x[i])
			L[i] = int8(nm + clampInt32(l, -nm, nm-1))
		}
		return 1 / iscale
	}
	returnEarly := false
	if rmseType < 0 {
		rmseType = -rmseType
		returnEarly = true
	}
	weight := func(i int) float32 {
		switch {
		case qw != nil:
			return qw[i]
		case rmseType == 1:
			return x[i] * x[i]
		case rmseType == 2:
			return 1
		case rmseType == 3:
			return abs32(x[i])
		}
		return sqrt32(abs32(x[i]))
	}
	var sumlx, suml2 float32
	for i := 0; i < n; i++ {
		l := clampInt32(nearestInt(iscale*x[i]), -nm, nm-1)
		L[i] = int8(l + nm)
		w := weight(i)
		fl := float32(l)
		sumlx += float32(w * x[i] * fl)
		suml2 += float32(w * fl * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	if returnEarly {
		if suml2 > 0 {
			return 0.5 * (scale + 1/iscale)
		}
		return 1 / iscale
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(float32(0.1)*float32(is))) / max
		sumlx, suml2 = 0, 0
		for i := 0; i < n; i++ {
			l := clampInt32(nearestInt(iscale*x[i]), -nm, nm-1)
			w := weight(i)
			fl := float32(l)
			sumlx += float32(w * x[i] * fl)
			suml2 += float32(w * fl * fl)
		}
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			for i := 0; i < n; i++ {
				l := nearestInt(iscale * x[i])
				L[i] = int8(nm + clampInt32(l, -nm, nm-1))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQ3Quants is make_q3_quants: the symmetric search used by Q3_K without
// weights. It rounds with the scale that maps the largest-magnitude value
// to -nmax and, with doRMSE, then moves single levels (weights x²) for up to
// five passes while that raises Σwxl²/Σwl². L gets the levels offset by
// nmax.
func makeQ3Quants(n, nmax int, x []float32, L []int8, doRMSE bool) float32 {
	var max, amax float32
	for i := 0; i < n; i++ {
		ax := abs32(x[i])
		if ax > amax {
			amax = ax
			max = x[i]
		}
	}
	if amax < groupMaxEps {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	nm := int32(nmax)
	iscale := float32(-nmax) / max
	if doRMSE {
		var sumlx, suml2 float32
		for i := 0; i < n; i++ {
			l := clampInt32(nearestInt(iscale*x[i]), -nm, nm-1)
			L[i] = int8(l)
			w := x[i] * x[i]
			fl := float32(l)
			sumlx += float32(w * x[i] * fl)
			suml2 += float32(w * fl * fl)
		}
		for itry := 0; itry < 5; itry++ {
			changed := 0
			for i := 0; i < n; i++ {
				w := x[i] * x[i]
				li := float32(L[i])
				slx := sumlx - float32(w*x[i]*li)
				if slx > 0 {
					sl2 := suml2 - float32(w*li*li)
					newL := clampInt32(nearestInt(x[i]*sl2/slx), -nm, nm-1)
					if newL != int32(L[i]) {
						fn := float32(newL)
						slx += float32(w * x[i] * fn)
						sl2 += float32(w * fn * fn)
						if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
							L[i] = int8(newL)
							sumlx = slx
							suml2 = sl2
							changed++
						}
					}
				}
			}
			if changed == 0 {
				break
			}
		}
		for i := 0; i < n; i++ {
			L[i] += int8(nmax)
		}
		if suml2 > 0 {
			return sumlx / suml2
		}
		return 0
	}
	for i := 0; i < n; i++ {
		l := clampInt32(nearestInt(iscale*x[i]), -nm, nm-1)
		L[i] = int8(l + nm)
	}
	return 1 / iscale
}

// makeQkx2Quants is make_qkx2_quants: an asymmetric fit x ≈ scale·l - min
// with levels 0..nmax (min is returned as a non-negative offset). It starts
// from the range [min(x,0), max(x)] and tries nstep+1 scales
// (rmin + rdelta·k + nmax)/range, solving the weighted least-squares scale
// and offset for each rounding and keeping the one with the smallest
// weighted error (absolute with useMAD, else squared).
func makeQkx2Quants(n, nmax int, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	min, max := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		if x[i] < min {
			min = x[i]
		}
		if x[i] > max {
			max = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if min > 0 {
		min = 0
	}
	if max == min {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0, -min
	}
	nm := int32(nmax)
	iscale := float32(nmax) / (max - min)
	scale = 1 / iscale
	var bestError float32
	for i := 0; i < n; i++ {
		l := nearestInt(iscale * float32(x[i]-min))
		L[i] = uint8(clampInt32(l, 0, nm))
		diff := float32(scale*float32(L[i])) + min - x[i]
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -min
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (max - min)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := clampInt32(nearestInt(iscale*float32(x[i]-min)), 0, nm)
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := 0; i < n; i++ {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - x[i]
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale = thisScale
				min = thisMin
			}
		}
	}
	return scale, -min
}

// makeQkx3Quants is make_qkx3_quants: makeQkx2Quants with weights x² when
// weights is nil and an all-zero answer whenever max ≤ min.
func makeQkx3Quants(n, nmax int, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	weight := func(i int) float32 {
		if weights != nil {
			return weights[i]
		}
		return x[i] * x[i]
	}
	min, max := x[0], x[0]
	sumW := weight(0)
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		if x[i] < min {
			min = x[i]
		}
		if x[i] > max {
			max = x[i]
		}
		w := weight(i)
		sumW += w
		sumX += float32(w * x[i])
	}
	if min > 0 {
		min = 0
	}
	if max <= min {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0, -min
	}
	nm := int32(nmax)
	iscale := float32(nmax) / (max - min)
	scale = 1 / iscale
	var bestMAD float32
	for i := 0; i < n; i++ {
		l := nearestInt(iscale * float32(x[i]-min))
		L[i] = uint8(clampInt32(l, 0, nm))
		diff := float32(scale*float32(L[i])) + min - x[i]
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestMAD += float32(weight(i) * diff)
	}
	if nstep < 1 {
		return scale, -min
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (max - min)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := clampInt32(nearestInt(iscale*float32(x[i]-min)), 0, nm)
			Laux[i] = uint8(l)
			w := weight(i)
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var mad float32
			for i := 0; i < n; i++ {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - x[i]
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				mad += float32(weight(i) * diff)
			}
			if mad < bestMAD {
				copy(L[:n], Laux[:n])
				bestMAD = mad
				scale = thisScale
				min = thisMin
			}
		}
	}
	return scale, -min
}

// makeQpQuants is make_qp_quants: it quantizes non-negative values (the
// sub-block scales or mins of a super-block) to levels 0..nmax with one
// scale, weighted by qw. It tries the scales (nmax + 0.1·k)/max for
// k = -4..4, keeps the one with the smallest weighted squared error, then
// moves single levels for up to five passes while Σwxl²/Σwl² grows, and
// returns the least-squares scale for the final levels.
func makeQpQuants(n, nmax int, x []float32, L []uint8, qw []float32) float32 {
	var max float32
	for i := 0; i < n; i++ {
		if !(max > x[i]) {
			max = x[i]
		}
	}
	if max < groupMaxEps {
		for i := 0; i < n; i++ {
			L[i] = 0
		}
		return 0
	}
	nm := int32(nmax)
	iscale := float32(nmax) / max
	for i := 0; i < n; i++ {
		L[i] = uint8(nearestInt(iscale * x[i]))
	}
	scale := 1 / iscale
	var bestMSE float32
	for i := 0; i < n; i++ {
		diff := x[i] - float32(scale*float32(L[i]))
		bestMSE += float32(qw[i] * diff * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := (float32(float32(0.1)*float32(is)) + float32(nmax)) / max
		scaleIs := 1 / iscaleIs
		var mse float32
		for i := 0; i < n; i++ {
			l := nearestInt(iscaleIs * x[i])
			if l > nm {
				l = nm
			}
			diff := x[i] - float32(scaleIs*float32(l))
			mse += float32(qw[i] * diff * diff)
		}
		if mse < bestMSE {
			bestMSE = mse
			iscale = iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i := 0; i < n; i++ {
		l := nearestInt(iscale * x[i])
		if l > nm {
			l = nm
		}
		L[i] = uint8(l)
		w := qw[i]
		fl := float32(l)
		sumlx += float32(w * x[i] * fl)
		suml2 += float32(w * fl * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i := 0; i < n; i++ {
			w := qw[i]
			li := float32(L[i])
			slx := sumlx - float32(w*x[i]*li)
			sl2 := suml2 - float32(w*li*li)
			if slx > 0 && sl2 > 0 {
				newL := nearestInt(x[i] * sl2 / slx)
				if newL > nm {
					newL = nm
				}
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(w * x[i] * fn)
					sl2 += float32(w * fn * fn)
					if slx*slx*suml2 > sumlx*sumlx*sl2 {
						L[i] = uint8(newL)
						sumlx = slx
						suml2 = sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// bestIndexInt8 is ggml's best_index_int8: the index of the entry of the
// sorted table val nearest to x (ties go to the upper entry), by binary
// search.
func bestIndexInt8(val []int8, x float32) int {
	n := len(val)
	if x <= float32(val[0]) {
		return 0
	}
	if x >= float32(val[n-1]) {
		return n - 1
	}
	ml, mu := 0, n-1
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(val[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(val[mu-1]) < float32(val[mu])-x {
		return mu - 1
	}
	return mu
}
