// Package codec codes KV caches as compact bitstreams, after CacheGen (Liu
// et al. 2024, "CacheGen: KV Cache Compression and Streaming for Fast
// Large Language Model Serving"), over its own rANS entropy coder (Table,
// Encoder, Decoder).
//
// # Method
//
// A block's keys and values are coded layer by layer, each layer's keys
// and values in planes of PlaneWidth channels (a KV head). Each token's
// value in a channel is predicted, and the difference quantized
// uniformly. Two predictors:
//
//   - PredictMean, the default: every token is predicted from its
//     channel's mean over the block, stored to an eighth of a bin. One
//     bin serves the whole plane: the layer's bin multiplier times the
//     plane's scale, the root mean square of its channels' deviations
//     (each channel's variance clipped at 16× the median channel's, so a
//     spike does not coarsen every channel), stored as a one-byte
//     exponent. A channel of small spread then costs few bits and a wide
//     one many: bits go where the variance is (the reverse water-filling
//     of rate-distortion theory), instead of the same bits per channel.
//     Each channel's differences are coded under a parametric model it
//     names with one byte (a discretized Laplace or Gaussian of one of
//     128 spreads, chosen for the fewest bits), so no table is stored.
//   - PredictAnchor, CacheGen's token-wise delta, with a bin per channel
//     (the layer's multiplier times the channel's standard deviation over
//     the block, floored at 2^−10 of its largest magnitude, a one-byte
//     exponent): tokens are split into groups of Group tokens (default
//     16); the first of a group, its anchor, is predicted from the
//     previous group's anchor (the first from 0), every other token from
//     its group's anchor. Two probability tables per plane, one for
//     anchors and one for the other tokens, counted over the plane and
//     stored in it. It is not the default because on pdtext-llama-28m
//     neighbouring tokens' keys and values correlate weakly (ρ < 0.5): a
//     token's difference from its anchor varies more than its distance
//     from the mean (1.2–1.4× the deviation).
//
// Prediction is closed-loop (from decoded values), so every decoded value
// is within half a bin of the original. The multiplier is 2^(3−b), b =
// Bits plus KeyBits or ValueBits plus the early bits: layer l's values
// get EarlyBits·2^−l (default 1.5), its keys a quarter of that. Earlier
// layers are coded finer, as CacheGen does, because their errors travel
// through every layer after them (measured on pdtext-llama-28m: at equal
// relative bins, layer 0's values cost 10× the divergence of a later
// layer's, layer 1's 3.5×, keys of every layer about the same).
//
// A quantized difference q is zigzag-mapped (0, −1, 1, −2, … → 0, 1, 2,
// 3, …) to z; z < 16 is its own symbol, a larger z is coded as the symbol
// 16 + 2·(bitlen(z)−5) + (the bit below z's top bit) with its bitlen(z)−2
// low bits raw. Symbols are coded with rANS (a 32-bit state, byte-wise
// renormalization, 12-bit probabilities).
//
// A KV cache (package kv, cachegen) codes keys before RoPE: it rotates
// each key back through its position's angle before coding and forward
// again after decoding, since a channel's mean predicts a key before RoPE
// and not after it (on pdtext-llama-28m, at equal bins, half the
// divergence for 0.1 bit more).
//
// # Format, version 2
//
// Integers are unsigned LEB128 varints (uvarint) unless a width is given;
// fixed-width fields are little-endian.
//
//	bytes     field
//	4         magic "TKVC"
//	1         version (2)
//	uvarint   L, layers (1…4096)
//	uvarint   Start, the position of the first token
//	uvarint   Len, tokens (≤ 2^24)
//	uvarint   Group: tokens per anchor group (PredictAnchor), or 0
//	          (PredictMean)
//	L ×       per layer:
//	  uvarint   KVDim, the width of a key and of a value (≤ 2^20)
//	  uvarint   W, channels per plane (divides KVDim)
//	  4         float32 bin multiplier of the keys (2^−20…2^20)
//	  4         float32 bin multiplier of the values
//	L ×       per layer, its planes: the keys' KVDim/W planes in channel
//	          order, then the values':
//	  uvarint   P, the plane's bytes
//	  P         the plane, with Group 0 (PredictMean):
//	    1         scale exponent e: scale (1+(e&7)/8)·2^((e>>3)−16)
//	    W×uvarint each channel's mean in eighths of a bin, zigzag
//	    W         each channel's model code m: family m>>7 (0 Laplace,
//	              1 Gaussian), spread 2^((m&127−40)/8) bins
//	    uvarint   R, the rANS stream's bytes
//	    R         the rANS stream: 4-byte big-endian state, then bytes in
//	              reading order; one symbol per element, token-major
//	              (token 0's W channels, token 1's, …), each under its
//	              channel's model
//	    rest      raw bits of large symbols, LSB-first, zero-padded
//	  P         the plane, with Group > 0 (PredictAnchor):
//	    W         one scale exponent per channel, as above
//	    table     anchor table: uvarint S (≤ 59 symbols), S uvarint
//	              frequencies summing to 4096 (or S = 0: no anchors)
//	    table     other tokens' table, the same way
//	    uvarint   R, then the rANS stream and raw bits as above
//	4         CRC-32C (Castagnoli) of every byte before it
//
// A decoded element is pred + float32(float32(q)·bin), bin = float32
// multiplier × float32 scale, rounded at each operation. The rANS stream
// must end in its initial state (2^23). Decode rejects another version,
// a bad checksum, any field out of range, a plane that does not consume
// its bytes exactly, and more than 4096 elements per byte of stream.
//
// # Step planes, version 1
//
// A step plane (AppendStepPlane, DecodeStepPlane) is a mean plane whose
// bin the caller gives instead of deriving it from the plane: a transform
// coder (package kv, cachegen's t field) codes a head's coordinates in a
// fitted basis with one bin for all of them, set by reverse
// water-filling, so the bin is a constant of the model, not of the
// plane, and is not stored. The plane does not stand alone: n, the width
// and the bin come from its owner.
//
//	bytes     field
//	1         version (1)
//	W×uvarint each channel's mean in eighths of a bin, zigzag
//	W         each channel's model code, as in a mean plane
//	uvarint   R, the rANS stream's bytes
//	R         the rANS stream, token-major, each element under its
//	          channel's model
//	rest      raw bits of large symbols, LSB-first, zero-padded
//
// A decoded element is mean + float32(float32(q)·bin). A channel whose
// differences are all 0 takes the narrowest Laplace model (code 0) and
// costs about 0.02 bits an element. The bin is 2^−40…2^40; a value more
// than 2^24 bins from its channel's mean is not coded (an error). Decode
// rejects another version and malformed bytes as a mean plane's.
//
// # Static planes, version 1
//
// A static plane (AppendStaticPlane, DecodeStaticPlane) is a step plane
// without its side information: every channel is predicted by 0 and its
// model code is the caller's too, a constant of the model (ModelCode, the
// spread a calibration fit gave the coordinate), so a plane of a few
// tokens costs its symbols and a few bytes of framing. Its owner gives n,
// the width, the bin and the W model codes.
//
//	bytes     field
//	1         version (1)
//	uvarint   R, the rANS stream's bytes
//	R         the rANS stream, token-major, each element under its
//	          channel's model
//	rest      raw bits of large symbols, LSB-first, zero-padded
//
// A decoded element is float32(float32(q)·bin). Decode rejects another
// version and malformed bytes as a step plane's.
package codec
