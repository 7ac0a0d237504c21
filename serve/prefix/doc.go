// Package prefix is the server's memory of KV it has computed before: a
// prefix cache of whole blocks of KV shared across requests, and Cache-Craft
// chunk reuse for prompts assembled from known documents.
//
// # Prefix cache
//
// A prompt's KV is cut into blocks of BlockTokens tokens. Block i is named
// by a chained hash, key_i = SHA-256(key_{i−1}, tokens of block i), with
// key_{−1} the hash of the namespace (the model, the KV spec, the codec),
// so a key names the whole prefix a block ends, and two prompts share
// exactly the blocks of their common prefix (the radix/block tree of vLLM
// and SGLang, in whole blocks). Restore walks the keys of a new prompt from
// the start and copies the longest run of held blocks into the sequence's
// empty cache; the rest of the prompt, at least its last token and any
// partial block, is computed as usual, and Save publishes the new whole
// blocks afterwards.
//
// Memory holds decoded float32 blocks under a byte budget, evicted least
// recently used among those no restore is copying (reference counts) and
// that no held block continues (a tree's leaves go first). With a store
// (store.Store: bbolt, Redis, S3) every new block is written through when
// saved, and a block memory lacks is fetched from the store and decoded.
// Write-through rather than spilling on eviction, because a block is then
// visible to every process sharing the store as soon as one computed it
// and survives a crash of this one, and eviction stays a cheap in-memory
// step with no I/O under the lock; the price is one Has (and, for new
// blocks, one Put) per block saved. A blob that fails to decode or to fit
// the model is a miss, reported through Options.OnError and deleted.
//
// Blocks travel through Options.Encode/Decode; the default is the raw
// format of EncodeRaw (versioned, checksummed float32), and the CacheGen
// codec plugs in the same way.
//
// # Chunk reuse (Cache-Craft)
//
// ChunkReuse prefills a prompt of prefix, chunks and question (RAG) from
// each chunk's KV computed once on its own (after BOS), moved to its
// position in the prompt by re-rotating its keys (model.ShiftKeys), and
// recomputes only a fraction of the chunk tokens: those whose attention to
// the text before their chunk makes the cached KV most wrong, following
// Agarwal et al., "Cache-Craft: Managing Chunk-Caches for Efficient
// Retrieval-Augmented Generation" (SIGMOD 2025; CacheBlend, Yao et al.
// 2024, is the related earlier work).
package prefix
