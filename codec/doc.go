// Package codec codes KV caches as compact bitstreams, after CacheGen (Liu
// et al. 2024, "CacheGen: KV Cache Compression and Streaming for Fast
// Large Language Model Serving"), over its own rANS entropy coder (Table,
// Encoder, Decoder).
//
// # Method
//
// A block's keys and values are coded layer by layer, each layer's keys
// and values in planes of PlaneWidth channels (a KV head). Each token's
// value in a channel is predicted, and the difference quantized uniformly
// with a bin per channel: the layer's bin multiplier times the channel's
// scale, its standard deviation over the block (floored at 2^−10 of its
// largest magnitude), stored as a one-byte exponent. Two predictors:
//
//   - PredictAnchor, CacheGen's token-wise delta: tokens are split into
//     groups of Group tokens (default 16); the first of a group, its
//     anchor, is predicted from the previous group's anchor (the first
//     from 0), every other token from its group's anchor.
//   - PredictMean, the default: every token is predicted from its
//     channel's mean over the block, rounded to the bin grid and stored.
//     This is plain uniform quantization of each channel on its own grid.
//     It is the default because on the models measured (pdtext-llama-28m)
//     neighbouring tokens' keys and values correlate weakly (ρ < 0.5): a
//     token's difference from its anchor varies more than its distance
//     from the mean (1.2–1.4× the deviation), and anchors cost 0.4 bits
//     per element more at the same bins.
//
// Prediction is closed-loop (from decoded values), so every decoded value
// is within half a bin of the original. The multiplier is 2^(3−b) for b =
// Bits (default 8) plus KeyBits or ValueBits, plus EarlyBits (default 1)
// in the first third of the layers and half of it in the middle third:
// earlier layers are coded finer, as CacheGen does, because their errors
// travel through every layer after them.
//
// A quantized difference q is zigzag-mapped (0, −1, 1, −2, … → 0, 1, 2,
// 3, …) to z; z < 16 is its own symbol, a larger z is coded as the symbol
// 16 + 2·(bitlen(z)−5) + (the bit below z's top bit) with its bitlen(z)−2
// low bits raw. Symbols are coded with rANS (a 32-bit state, byte-wise
// renormalization, 12-bit probabilities) under two probability tables
// per plane, one for anchors and one for the other tokens, counted over
// the plane and stored in it: a probability model per layer, per keys or
// values, per channel group.
//
// # Format, version 1
//
// Integers are unsigned LEB128 varints (uvarint) unless a width is given;
// fixed-width fields are little-endian.
//
//	bytes     field
//	4         magic "TKVC"
//	1         version (1)
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
//	  P         the plane:
//	    W         one scale exponent e per channel: scale (1+(e&7)/8)·2^((e>>3)−16)
//	    W×uvarint with Group 0 only: each channel's mean in bins, zigzag
//	    table     anchor table: uvarint S (≤ 59 symbols), S uvarint
//	              frequencies summing to 4096 (or S = 0: no anchors)
//	    table     other tokens' table, the same way
//	    uvarint   R, the rANS stream's bytes
//	    R         the rANS stream: 4-byte big-endian state, then bytes in
//	              reading order; one symbol per element, token-major
//	              (token 0's W channels, token 1's, …)
//	    rest      raw bits of large symbols, LSB-first, zero-padded
//	4         CRC-32C (Castagnoli) of every byte before it
//
// A decoded element is pred + float32(float32(q)·bin), bin = float32
// multiplier × float32 scale, rounded at each operation. The rANS stream
// must end in its initial state (2^23). Decode rejects another version,
// a bad checksum, any field out of range, a plane that does not consume
// its bytes exactly, and more than 4096 elements per byte of stream.
package codec
