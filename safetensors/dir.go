package safetensors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Checkpoint is the set of safetensors files of one model: a single
// model.safetensors, or the shards listed in model.safetensors.index.json.
type Checkpoint struct {
	Dir     string
	files   []*File
	tensors map[string]*Tensor
	where   map[string]string // tensor name -> file path
}

// OpenDir opens the weights of a checkpoint directory, memory-mapped.
func OpenDir(dir string) (*Checkpoint, error) { return openDir(context.Background(), dir, false) }

// OpenDirResident reads the weights of a checkpoint directory into memory
// (as stored, no conversion) instead of mapping them: slower to load, but on
// machines where page faults are costly (some virtual machines) the weights
// are then read at full memory bandwidth.
func OpenDirResident(dir string) (*Checkpoint, error) {
	return openDir(context.Background(), dir, true)
}

// OpenDirResidentContext is OpenDirResident that a cancelled ctx stops
// between reads of 64 MiB (reading 54 GB takes minutes).
func OpenDirResidentContext(ctx context.Context, dir string) (*Checkpoint, error) {
	return openDir(ctx, dir, true)
}

func openDir(ctx context.Context, dir string, resident bool) (*Checkpoint, error) {
	c := &Checkpoint{Dir: dir, tensors: map[string]*Tensor{}, where: map[string]string{}}
	index := filepath.Join(dir, "model.safetensors.index.json")
	single := filepath.Join(dir, "model.safetensors")
	var shards []string
	var wantIn map[string]string
	switch data, err := os.ReadFile(index); {
	case err == nil:
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: empty weight_map", index)
		}
		seen := map[string]bool{}
		for name, file := range idx.WeightMap {
			if file == "" || strings.ContainsAny(file, `/\`) || file == ".." {
				return nil, fmt.Errorf("%s: tensor %s is in %q, not a file name in the directory", index, name, file)
			}
			if !seen[file] {
				seen[file] = true
				shards = append(shards, file)
			}
		}
		sort.Strings(shards)
		wantIn = idx.WeightMap
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("%s: no model.safetensors or model.safetensors.index.json", dir)
		}
		shards = []string{"model.safetensors"}
	default:
		return nil, err
	}
	for _, s := range shards {
		f, err := open(ctx, filepath.Join(dir, s), resident)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		for _, name := range f.Names() {
			if prev, dup := c.where[name]; dup {
				c.Close()
				return nil, fmt.Errorf("tensor %s is in both %s and %s", name, prev, f.Path)
			}
			c.tensors[name] = f.Tensor(name)
			c.where[name] = f.Path
		}
	}
	for name, file := range wantIn {
		if got, ok := c.where[name]; !ok || filepath.Base(got) != file {
			c.Close()
			return nil, fmt.Errorf("%s: tensor %s should be in %s but is not", index, name, file)
		}
	}
	return c, nil
}

// Tensor returns the named tensor, or nil.
func (c *Checkpoint) Tensor(name string) *Tensor { return c.tensors[name] }

// File returns the path of the file holding the named tensor.
func (c *Checkpoint) File(name string) string { return c.where[name] }

// Names lists every tensor, sorted.
func (c *Checkpoint) Names() []string {
	names := make([]string, 0, len(c.tensors))
	for n := range c.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close unmaps every file.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	c.files = nil
	return errors.Join(errs...)
}
