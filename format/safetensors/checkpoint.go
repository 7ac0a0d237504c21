package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/terse-llm/terse/tensor"
)

// IndexFile is the name of a sharded checkpoint's index.
const IndexFile = "model.safetensors.index.json"

// Checkpoint is a set of safetensors files read as one: a single
// model.safetensors, or shards listed by model.safetensors.index.json.
// Tensor names are unique across the files.
type Checkpoint struct {
	dir   string
	files []*File
	where map[string]*File
	names []string
	meta  map[string]string
}

// index is the JSON of model.safetensors.index.json.
type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

// OpenDir opens the checkpoint in dir: the shards named by
// model.safetensors.index.json when it exists, else model.safetensors, else
// every *.safetensors file in the folder (in name order).
func OpenDir(dir string) (*Checkpoint, error) {
	idxPath := filepath.Join(dir, IndexFile)
	b, err := os.ReadFile(idxPath)
	switch {
	case err == nil:
		var idx index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("safetensors %s: %w", idxPath, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("safetensors %s: weight_map is missing or empty", idxPath)
		}
		var shards []string
		seen := map[string]bool{}
		for name, shard := range idx.WeightMap {
			if !filepath.IsLocal(shard) || filepath.Base(shard) != shard {
				return nil, fmt.Errorf("safetensors %s: tensor %q: shard %q is not a file name in the folder", idxPath, name, shard)
			}
			if !seen[shard] {
				seen[shard] = true
				shards = append(shards, shard)
			}
		}
		sort.Strings(shards)
		paths := make([]string, len(shards))
		for i, s := range shards {
			paths[i] = filepath.Join(dir, s)
		}
		c, err := OpenFiles(paths...)
		if err != nil {
			return nil, err
		}
		c.dir = dir
		// Every tensor the index lists must be in the shard it names.
		for name, shard := range idx.WeightMap {
			f, ok := c.where[name]
			if !ok {
				c.Close()
				return nil, fmt.Errorf("safetensors %s: tensor %q: listed in shard %s, which does not hold it", idxPath, name, shard)
			}
			if f.path != filepath.Join(dir, shard) {
				c.Close()
				return nil, fmt.Errorf("safetensors %s: tensor %q: listed in shard %s but stored in %s", idxPath, name, shard, f.path)
			}
		}
		return c, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("safetensors %s: %w", idxPath, err)
	}
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		c, err := OpenFiles(single)
		if c != nil {
			c.dir = dir
		}
		return c, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("safetensors %s: no %s, model.safetensors or *.safetensors in the folder", dir, IndexFile)
	}
	sort.Strings(paths)
	c, err := OpenFiles(paths...)
	if c != nil {
		c.dir = dir
	}
	return c, err
}

// OpenFiles opens the given safetensors files as one checkpoint. A tensor
// name found in two files is an error.
func OpenFiles(paths ...string) (*Checkpoint, error) {
	if len(paths) == 0 {
		return nil, errors.New("safetensors: no files")
	}
	c := &Checkpoint{where: map[string]*File{}}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		for _, name := range f.names {
			if other, ok := c.where[name]; ok {
				c.Close()
				return nil, fmt.Errorf("safetensors %s: tensor %q: also in %s", p, name, other.path)
			}
			c.where[name] = f
			c.names = append(c.names, name)
		}
		for k, v := range f.meta {
			if c.meta == nil {
				c.meta = map[string]string{}
			}
			if _, ok := c.meta[k]; !ok {
				c.meta[k] = v
			}
		}
	}
	c.dir = filepath.Dir(paths[0])
	return c, nil
}

// Dir returns the checkpoint's folder.
func (c *Checkpoint) Dir() string { return c.dir }

// Files returns the opened files, in the order their tensors are listed.
func (c *Checkpoint) Files() []*File { return slices.Clone(c.files) }

// Bytes returns the total size of the files.
func (c *Checkpoint) Bytes() int64 {
	var n int64
	for _, f := range c.files {
		n += f.size
	}
	return n
}

// Names returns every tensor name: file by file, in file order.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Metadata returns the union of the files' "__metadata__" strings (the
// first file's value wins where they differ); nil when there is none.
func (c *Checkpoint) Metadata() map[string]string { return maps.Clone(c.meta) }

// Info returns the dtype, shape and offsets of the named tensor.
func (c *Checkpoint) Info(name string) (TensorInfo, error) {
	f, ok := c.where[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors %s: tensor %q: %w", c.dir, name, ErrNotFound)
	}
	return f.Info(name)
}

// Tensor returns the named tensor, aliasing its file's mapping: read-only
// and valid until Close.
func (c *Checkpoint) Tensor(name string) (*tensor.Tensor, error) {
	f, ok := c.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", c.dir, name, ErrNotFound)
	}
	return f.Tensor(name)
}

// Close releases every file.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
