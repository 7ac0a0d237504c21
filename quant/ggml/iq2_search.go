package ggml

import (
	"math"
	"sync"
)

// The IQ2 quantizers' search (ggml's iq2xs_init_impl and
// iq2_find_best_neighbour).
//
// The IQ2 grids are sets of points of the 8-dimensional lattice of odd
// integers 1, 3, 5: point k has coordinates 2·l_i + 1, l_i the 2-bit
// field i of its code (iq2xxsCodes, iq2xsCodes). The quantizer rounds a
// run of 8 scaled weights to levels 0..2; when that lattice point is not
// on the grid it takes, among the grid points at the nwant (2) closest
// distinct squared distances, the one with the least weighted error.

// iq2MapSize is ggml's kmap_size: every 16-bit code of levels 0..2 is
// below it.
const iq2MapSize = 43692

// iq2Index is the search index of one IQ2 grid.
type iq2Index struct {
	point  [][8]int8            // grid point k's coordinates (1, 3, 5)
	onGrid [iq2MapSize]int32    // lattice code → grid index, or -1
	near   [iq2MapSize][]uint16 // off-grid code → neighbours by (distance, index)
}

// newIQ2Index builds the index of the grid with the given codes, keeping
// the neighbours at the nwant closest distances.
func newIQ2Index(codes []uint16, nwant int) *iq2Index {
	x := &iq2Index{point: make([][8]int8, len(codes))}
	for i := range x.onGrid {
		x.onGrid[i] = -1
	}
	for k, c := range codes {
		for i := 0; i < 8; i++ {
			x.point[k][i] = int8(2*(c>>(2*uint(i))&3) + 1)
		}
		x.onGrid[c] = int32(k)
	}
	d2s := make([]int, len(codes))
	for u := range x.onGrid {
		if x.onGrid[u] >= 0 || hasLevel3(u) {
			continue
		}
		var pos [8]int
		for i := range pos {
			pos[i] = 2*(u>>(2*uint(i))&3) + 1
		}
		for k, p := range x.point {
			d2 := 0
			for i := range pos {
				d := int(p[i]) - pos[i]
				d2 += d * d
			}
			d2s[k] = d2
		}
		x.near[u] = nearestByDistance(d2s, nwant)
	}
	return x
}

// hasLevel3 reports whether lattice code u has a field 3, which the
// quantizers never produce (they clamp levels to 0..2): such codes need no
// neighbours.
func hasLevel3(u int) bool {
	for i := 0; i < 8; i++ {
		if u>>(2*uint(i))&3 == 3 {
			return true
		}
	}
	return false
}

// nearestByDistance returns the indices k whose d2s[k] is among the nwant
// smallest distinct values, ordered by (d2s[k], k): what ggml gets by
// sorting (distance, index) pairs and cutting after the nwant-th distance.
func nearestByDistance(d2s []int, nwant int) []uint16 {
	var ds []int // the nwant smallest distinct distances, ascending
	for _, d := range d2s {
		i := 0
		for i < len(ds) && ds[i] < d {
			i++
		}
		if i < len(ds) && ds[i] == d {
			continue
		}
		if i < nwant {
			ds = append(ds, 0)
			copy(ds[i+1:], ds[i:])
			ds[i] = d
			if len(ds) > nwant {
				ds = ds[:nwant]
			}
		}
	}
	var ns []uint16
	for _, d := range ds {
		for k, dk := range d2s {
			if dk == d {
				ns = append(ns, uint16(k))
			}
		}
	}
	return ns
}

// iq2XXSIndex and iq2XSIndex are built on first use.
var (
	iq2XXSIndex = sync.OnceValue(func() *iq2Index { return newIQ2Index(iq2xxsCodes[:], 2) })
	iq2XSIndex  = sync.OnceValue(func() *iq2Index { return newIQ2Index(iq2xsCodes[:], 2) })
)

// bestNeighbour returns the neighbour of code u (not on the grid) with the
// least Σ w_i·(scale·q_i − x_i)² over the run's 8 values and stores its
// levels in l.
func (x *iq2Index) bestNeighbour(u int, xval, w []float32, scale float32, l []int8) int {
	best := float32(math.MaxFloat32)
	idx := -1
	for _, k := range x.near[u] {
		var d2 float32
		for i, q := range x.point[k] {
			diff := float32(scale*float32(q)) - xval[i]
			d2 += float32(float32(w[i]*diff) * diff)
		}
		if d2 < best {
			best, idx = d2, int(k)
		}
	}
	if idx < 0 {
		// every error was NaN (weights overflowed on values near the
		// float32 limit; ggml aborts here): take the first neighbour
		idx = int(x.near[u][0])
	}
	for i, q := range x.point[idx] {
		l[i] = (q - 1) / 2
	}
	return idx
}

// iq2Levels rounds a run of 8 values scaled by id to levels 0..2 and
// returns their lattice code.
func iq2Levels(xval []float32, id float32, l []int8) int {
	u := 0
	for i := 0; i < 8; i++ {
		v := clampInt32(nearestInt(0.5*float32(float32(id*xval[i])-1)), 0, 2)
		l[i] = int8(v)
		u |= int(v) << (2 * uint(i))
	}
	return u
}

// gridOf returns the grid index of levels l, or 0 where they are not a grid
// point (only after arithmetic overflow on values near the float32 limit,
// where ggml aborts).
func (x *iq2Index) gridOf(l []int8) int {
	u := iq2Code(l)
	if u < 0 || u >= len(x.onGrid) || x.onGrid[u] < 0 {
		return 0
	}
	return int(x.onGrid[u])
}

// iq2Code packs the levels of a run of 8 into a lattice code.
func iq2Code(l []int8) int {
	u := 0
	for i := 0; i < 8; i++ {
		u |= int(l[i]) << (2 * uint(i))
	}
	return u
}

// The grids' codes, from ggml's iq2xs_init_impl (kgrid_2bit_256,
// kgrid_2bit_512).
var iq2xxsCodes = [256]uint16{
	0, 2, 5, 8, 10, 17, 20, 32, 34, 40, 42, 65, 68, 80, 88, 97,
	100, 128, 130, 138, 162, 257, 260, 272, 277, 320, 388, 408, 512, 514, 546, 642,
	1025, 1028, 1040, 1057, 1060, 1088, 1090, 1096, 1120, 1153, 1156, 1168, 1188, 1280, 1282, 1288,
	1312, 1350, 1385, 1408, 1425, 1545, 1552, 1600, 1668, 1700, 2048, 2053, 2056, 2068, 2088, 2113,
	2116, 2128, 2130, 2184, 2308, 2368, 2562, 2580, 4097, 4100, 4112, 4129, 4160, 4192, 4228, 4240,
	4245, 4352, 4360, 4384, 4432, 4442, 4480, 4644, 4677, 5120, 5128, 5152, 5157, 5193, 5248, 5400,
	5474, 5632, 5654, 6145, 6148, 6160, 6208, 6273, 6400, 6405, 6560, 6737, 8192, 8194, 8202, 8260,
	8289, 8320, 8322, 8489, 8520, 8704, 8706, 9217, 9220, 9232, 9280, 9302, 9472, 9537, 9572, 9872,
	10248, 10272, 10388, 10820, 16385, 16388, 16400, 16408, 16417, 16420, 16448, 16456, 16470, 16480, 16513, 16516,
	16528, 16640, 16672, 16737, 16768, 16773, 16897, 16912, 16968, 16982, 17000, 17408, 17416, 17440, 17536, 17561,
	17682, 17700, 17920, 18433, 18436, 18448, 18496, 18501, 18688, 18776, 18785, 18818, 19013, 19088, 20480, 20488,
	20497, 20505, 20512, 20608, 20616, 20740, 20802, 20900, 21137, 21648, 21650, 21770, 22017, 22100, 22528, 22545,
	22553, 22628, 22848, 23048, 24580, 24592, 24640, 24680, 24832, 24917, 25112, 25184, 25600, 25605, 25872, 25874,
	25988, 26690, 32768, 32770, 32778, 32833, 32898, 33028, 33048, 33088, 33297, 33793, 33796, 33808, 33813, 33856,
	33888, 34048, 34118, 34196, 34313, 34368, 34400, 34818, 35076, 35345, 36868, 36880, 36900, 36928, 37025, 37142,
	37248, 37445, 37888, 37922, 37956, 38225, 39041, 39200, 40962, 41040, 41093, 41225, 41472, 42008, 43088, 43268,
}

var iq2xsCodes = [512]uint16{
	0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70,
	73, 80, 82, 85, 88, 97, 100, 128, 130, 133, 136, 145, 148, 153, 160, 257,
	260, 262, 265, 272, 274, 277, 280, 282, 289, 292, 320, 322, 325, 328, 337, 340,
	352, 360, 385, 388, 400, 512, 514, 517, 520, 529, 532, 544, 577, 580, 592, 597,
	640, 650, 1025, 1028, 1030, 1033, 1040, 1042, 1045, 1048, 1057, 1060, 1088, 1090, 1093, 1096,
	1105, 1108, 1110, 1120, 1153, 1156, 1168, 1280, 1282, 1285, 1288, 1297, 1300, 1312, 1345, 1348,
	1360, 1377, 1408, 1537, 1540, 1552, 1574, 1600, 1602, 1668, 2048, 2050, 2053, 2056, 2058, 2065,
	2068, 2080, 2085, 2113, 2116, 2128, 2136, 2176, 2208, 2218, 2305, 2308, 2320, 2368, 2433, 2441,
	2560, 2592, 2600, 2710, 2720, 4097, 4100, 4102, 4105, 4112, 4114, 4117, 4120, 4129, 4132, 4160,
	4162, 4165, 4168, 4177, 4180, 4192, 4202, 4225, 4228, 4240, 4352, 4354, 4357, 4360, 4369, 4372,
	4384, 4417, 4420, 4432, 4480, 4500, 4502, 4609, 4612, 4614, 4624, 4672, 4704, 5120, 5122, 5125,
	5128, 5137, 5140, 5152, 5185, 5188, 5193, 5200, 5220, 5248, 5377, 5380, 5392, 5440, 5632, 5652,
	5705, 6145, 6148, 6160, 6162, 6208, 6228, 6278, 6400, 6405, 6502, 6737, 6825, 8192, 8194, 8197,
	8200, 8202, 8209, 8212, 8224, 8257, 8260, 8272, 8320, 8352, 8449, 8452, 8464, 8512, 8520, 8549,
	8704, 8738, 8832, 8872, 9217, 9220, 9232, 9257, 9280, 9472, 9537, 9554, 9625, 9729, 9754, 9894,
	10240, 10248, 10250, 10272, 10325, 10376, 10402, 10600, 10640, 10760, 10784, 10882, 10888, 10890, 16385, 16388,
	16390, 16393, 16400, 16402, 16405, 16408, 16417, 16420, 16448, 16450, 16453, 16456, 16458, 16465, 16468, 16480,
	16485, 16513, 16516, 16528, 16640, 16642, 16645, 16648, 16657, 16660, 16672, 16705, 16708, 16720, 16768, 16773,
	16802, 16897, 16900, 16912, 16914, 16937, 16960, 17408, 17410, 17413, 17416, 17425, 17428, 17433, 17440, 17473,
	17476, 17488, 17536, 17556, 17665, 17668, 17680, 17700, 17728, 17818, 17920, 17930, 17988, 18000, 18433, 18436,
	18448, 18496, 18501, 18516, 18530, 18688, 18705, 18756, 18768, 18793, 18948, 20480, 20482, 20485, 20488, 20497,
	20500, 20512, 20520, 20545, 20548, 20560, 20608, 20737, 20740, 20752, 20757, 20800, 20802, 20992, 21060, 21162,
	21505, 21508, 21520, 21537, 21568, 21600, 21633, 21665, 21760, 21768, 21888, 21896, 22049, 22120, 22177, 22528,
	22548, 22593, 22608, 22681, 22810, 22848, 22850, 23173, 24577, 24580, 24592, 24640, 24660, 24674, 24710, 24745,
	24832, 25124, 25162, 25234, 25600, 25622, 25872, 25920, 25925, 26020, 26625, 26730, 26917, 27142, 27220, 27234,
	32768, 32770, 32773, 32776, 32785, 32788, 32800, 32810, 32833, 32836, 32848, 32896, 32898, 32936, 32938, 33025,
	33028, 33030, 33040, 33088, 33105, 33113, 33280, 33312, 33408, 33410, 33440, 33448, 33793, 33796, 33808, 33810,
	33813, 33856, 33888, 33929, 34048, 34116, 34213, 34328, 34410, 34816, 34824, 34853, 34906, 34944, 34946, 34984,
	35078, 35362, 35456, 35464, 35478, 35496, 36865, 36868, 36880, 36928, 36950, 36996, 37120, 37154, 37220, 37462,
	37513, 37888, 37893, 37956, 37968, 37976, 38185, 38288, 38290, 38465, 38993, 39078, 39241, 39445, 39520, 40960,
	40962, 40968, 40970, 40992, 41002, 41120, 41297, 41305, 41382, 41472, 41474, 41480, 41514, 41600, 41632, 42048,
	42133, 42597, 42648, 43018, 43040, 43042, 43048, 43168, 43176, 43268, 43396, 43398, 43560, 43562, 43665, 43690,
}
