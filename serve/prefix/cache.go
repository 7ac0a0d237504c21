package prefix

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/store"
)

// Defaults of Options.
const (
	DefaultBlockTokens = 32
	DefaultMemoryBytes = 256 << 20
)

// Options configure a Cache.
type Options struct {
	// Namespace names what the KV depends on besides the tokens: the
	// model's identity (a hash of its weights or file), the KV cache spec
	// and the codec. Caches of different namespaces never share a block.
	// It must not be empty.
	Namespace string
	// BlockTokens is the number of tokens of a block (0: DefaultBlockTokens).
	// Only whole blocks are cached.
	BlockTokens int
	// MemoryBytes is the budget of the blocks held in memory, as float32
	// keys and values (0: DefaultMemoryBytes). The least recently used
	// blocks not in use are dropped past it (they stay in Store); blocks
	// pinned by restores and saves in flight may hold it over for a while.
	MemoryBytes int64
	// Store, when set, receives every new block as soon as it is saved
	// (write-through) and is asked for the blocks memory does not hold,
	// so that processes sharing a store share their blocks.
	Store store.Store
	// Encode and Decode serialize blocks for Store (nil: EncodeRaw and
	// DecodeRaw). A lossy codec is fine; its name belongs in Namespace.
	Encode func(*model.KVBlock) ([]byte, error)
	Decode func([]byte) (*model.KVBlock, error)
	// OnError, when set, is told of the store and codec failures that the
	// cache turned into misses (a corrupt blob, an unreachable store).
	OnError func(error)
}

// key is the chained hash that names a block: of the namespace, the key of
// the block before it and the block's tokens.
type key [sha256.Size]byte

// node is a block held in memory: a vertex of the block tree (a prefix
// block's parent is the block before it; a chunk has none), an entry of
// the LRU list, pinned while a restore copies it.
type node struct {
	key      key
	parent   *node
	children int
	refs     int
	block    *model.KVBlock // immutable once inserted
	elem     *list.Element
}

// Cache is the prefix cache: whole blocks of KV keyed by the chained hash
// of the token prefix they end, shared by every sequence of one model and
// KV spec. It is safe for concurrent use.
type Cache struct {
	cfg     *model.Config
	opt     Options
	root    key // the key "before" the first block
	chunkNS key

	mu        sync.Mutex
	nodes     map[key]*node
	lru       *list.List // front: most recently used
	bytes     int64
	hits      int64
	lookups   int64
	evictions int64
	fetched   int64
}

// New makes a prefix cache for models of cfg.
func New(cfg *model.Config, opt Options) (*Cache, error) {
	if opt.Namespace == "" {
		return nil, errors.New("prefix cache: empty namespace (name the model, the KV spec and the codec)")
	}
	if opt.BlockTokens == 0 {
		opt.BlockTokens = DefaultBlockTokens
	}
	if opt.BlockTokens < 0 {
		return nil, fmt.Errorf("prefix cache: block of %d tokens", opt.BlockTokens)
	}
	if opt.MemoryBytes == 0 {
		opt.MemoryBytes = DefaultMemoryBytes
	}
	if opt.Encode == nil {
		opt.Encode = EncodeRaw
	}
	if opt.Decode == nil {
		opt.Decode = DecodeRaw
	}
	return &Cache{cfg: cfg, opt: opt,
		root:    sha256.Sum256([]byte("terse prefix v1\x00" + opt.Namespace)),
		chunkNS: sha256.Sum256([]byte("terse chunk v1\x00" + opt.Namespace)),
		nodes:   map[key]*node{}, lru: list.New()}, nil
}

// BlockTokens is the number of tokens of a block.
func (c *Cache) BlockTokens() int { return c.opt.BlockTokens }

// chain is the key of the block of tokens that follows the block keyed
// parent.
func chain(parent key, tokens []int) key {
	h := sha256.New()
	h.Write(parent[:])
	buf := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+4*len(tokens)), uint32(len(tokens)))
	for _, t := range tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	h.Write(buf)
	var k key
	h.Sum(k[:0])
	return k
}

// storeKey is the store's name for the prefix block keyed k.
func storeKey(k key) string { return "kv/" + hex.EncodeToString(k[:]) }

// chunkStoreKey is the store's name for the chunk keyed k.
func chunkStoreKey(k key) string { return "chunk/" + hex.EncodeToString(k[:]) }

func (c *Cache) report(err error) {
	if c.opt.OnError != nil {
		c.opt.OnError(err)
	}
}

// acquire pins the block keyed k when memory holds it.
func (c *Cache) acquire(k key) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[k]
	if n != nil {
		n.refs++
	}
	return n
}

// insert adds block b under k, child of parent (pinned by the caller, or
// nil), and returns it pinned; when another goroutine inserted k first it
// returns that one.
func (c *Cache) insert(k key, parent *node, b *model.KVBlock) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[k]; n != nil {
		n.refs++
		return n
	}
	n := &node{key: k, parent: parent, refs: 1, block: b}
	n.elem = c.lru.PushFront(n)
	c.nodes[k] = n
	if parent != nil {
		parent.children++
	}
	c.bytes += b.Bytes()
	c.evict()
	return n
}

// evict drops least recently used blocks, neither in use nor a parent of
// a held block, while memory exceeds the budget. Callers hold mu. Touching
// a path from its end to its start keeps parents more recent than their
// children, so this mostly takes the first candidate from the back.
func (c *Cache) evict() {
	for e := c.lru.Back(); e != nil && c.bytes > c.opt.MemoryBytes; {
		n := e.Value.(*node)
		e = e.Prev()
		if n.refs > 0 || n.children > 0 {
			continue
		}
		c.lru.Remove(n.elem)
		delete(c.nodes, n.key)
		if n.parent != nil {
			n.parent.children--
		}
		c.bytes -= n.block.Bytes()
		c.evictions++
	}
}

// release unpins a path and marks it used, from its end to its start.
func (c *Cache) release(path []*node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(path) - 1; i >= 0; i-- {
		n := path[i]
		n.refs--
		if c.nodes[n.key] == n {
			c.lru.MoveToFront(n.elem)
		}
	}
	c.evict()
}

// fetch reads the block keyed k from the store, checks that it holds n
// positions from start that fit the model, and inserts it pinned. A
// missing, unreadable or corrupt blob is a miss (nil); the last two are
// reported, and a corrupt one is deleted so that a later Save replaces it.
func (c *Cache) fetch(ctx context.Context, k key, sk string, parent *node, start, n int) *node {
	if c.opt.Store == nil {
		return nil
	}
	data, err := c.opt.Store.Get(ctx, sk)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		c.report(fmt.Errorf("prefix cache: store key %s: %w", sk, err))
		return nil
	}
	b, err := c.opt.Decode(data)
	if err == nil {
		err = b.Check(c.cfg)
	}
	if err == nil && (b.Start != start || b.Len != n) {
		err = fmt.Errorf("block of positions [%d, %d), want [%d, %d)", b.Start, b.Start+b.Len, start, start+n)
	}
	if err != nil {
		c.report(fmt.Errorf("prefix cache: store key %s: %w", sk, err))
		if derr := c.opt.Store.Delete(ctx, sk); derr != nil {
			c.report(fmt.Errorf("prefix cache: store key %s: deleting a corrupt block: %w", sk, derr))
		}
		return nil
	}
	c.mu.Lock()
	c.fetched++
	c.mu.Unlock()
	return c.insert(k, parent, b)
}

// Restore copies the longest cached prefix of tokens, in whole blocks,
// into the empty cache kv, and returns the number of positions restored
// (0: none). It restores at most len(tokens)−1 positions, so that the
// caller always has a token left to run for the next-token logits. Blocks
// memory lacks are fetched from the store. On an error kv is left empty.
func (c *Cache) Restore(ctx context.Context, kv model.KVCache, tokens []int) (int, error) {
	if kv.Len() != 0 {
		return 0, fmt.Errorf("prefix cache: restore into a cache holding %d positions", kv.Len())
	}
	B := c.opt.BlockTokens
	nb := min(max(len(tokens)-1, 0), kv.Cap()) / B
	var path []*node
	defer func() { c.release(path) }()
	k := c.root
	for i := 0; i < nb; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		k = chain(k, tokens[i*B:(i+1)*B])
		n := c.acquire(k)
		if n == nil {
			var parent *node
			if i > 0 {
				parent = path[i-1]
			}
			n = c.fetch(ctx, k, storeKey(k), parent, i*B, B)
		}
		if n == nil {
			break
		}
		path = append(path, n)
	}
	for _, n := range path {
		if err := model.ImportKV(kv, c.cfg, n.block); err != nil {
			_ = kv.Truncate(0)
			return 0, fmt.Errorf("prefix cache: %w", err)
		}
	}
	c.mu.Lock()
	c.lookups += int64(nb)
	c.hits += int64(len(path))
	c.mu.Unlock()
	return len(path) * B, nil
}

// Save publishes the whole blocks of tokens, which kv holds from position
// 0, that the cache does not hold yet: into memory, and through to the
// store unless it already has them. A store failure is returned after
// memory has them.
func (c *Cache) Save(ctx context.Context, kv model.KVCache, tokens []int) error {
	if len(tokens) > kv.Len() {
		return fmt.Errorf("prefix cache: save of %d tokens from a cache holding %d", len(tokens), kv.Len())
	}
	B := c.opt.BlockTokens
	nb := len(tokens) / B
	var path, fresh []*node
	defer func() { c.release(path) }()
	k := c.root
	for i := 0; i < nb; i++ {
		k = chain(k, tokens[i*B:(i+1)*B])
		n := c.acquire(k)
		if n == nil {
			b, err := model.ExportKV(kv, c.cfg, i*B, (i+1)*B)
			if err != nil {
				return fmt.Errorf("prefix cache: %w", err)
			}
			var parent *node
			if i > 0 {
				parent = path[i-1]
			}
			n = c.insert(k, parent, b)
			fresh = append(fresh, n)
		}
		path = append(path, n)
	}
	var errs []error
	for _, n := range fresh {
		if err := c.put(ctx, storeKey(n.key), n.block); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// put writes a block through to the store unless it holds the key already.
func (c *Cache) put(ctx context.Context, sk string, b *model.KVBlock) error {
	if c.opt.Store == nil {
		return nil
	}
	if ok, err := c.opt.Store.Has(ctx, sk); err == nil && ok {
		return nil
	}
	data, err := c.opt.Encode(b)
	if err != nil {
		return fmt.Errorf("prefix cache: store key %s: encode: %w", sk, err)
	}
	if err := c.opt.Store.Put(ctx, sk, data); err != nil {
		return fmt.Errorf("prefix cache: store key %s: %w", sk, err)
	}
	return nil
}

// Stats reports the blocks restored (hits) out of the whole blocks
// Restore looked up (lookups).
func (c *Cache) Stats() (hits, lookups int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.lookups
}

// Info is a snapshot of a cache's state.
type Info struct {
	Blocks      int   // blocks in memory
	Bytes       int64 // their float32 bytes
	Evictions   int64 // blocks dropped from memory under the budget
	StoreReads  int64 // blocks read back from the store
	Hits        int64 // as Stats
	Lookups     int64
	BlockTokens int
}

// Info reports the cache's state.
func (c *Cache) Info() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Info{Blocks: len(c.nodes), Bytes: c.bytes, Evictions: c.evictions, StoreReads: c.fetched,
		Hits: c.hits, Lookups: c.lookups, BlockTokens: c.opt.BlockTokens}
}
