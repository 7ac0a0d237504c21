package compress

import (
	"fmt"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/tensor"
)

// The files compress creates are all written here, so that how a file
// reaches its final name (atomically, fsync'd) is decided in one place.

// write writes the compressed tensors to j.opt.Out in the method's format.
func (j *job) write(ts []*tensor.Tensor) error {
	switch j.method.Output() {
	case GGUF:
		ft := convert.FileType(j.preset.FileType)
		return convert.Write(j.opt.Out, j.ck, ts, convert.Options{FileType: &ft})
	case Native:
		return native.WriteFile(j.opt.Out, j.ck.Model.Config, j.tokKind, j.tok, ts)
	}
	return fmt.Errorf("compress %s: cannot write %q files", j.opt.Out, j.method.Output())
}

// writeIMatrix writes the measured importance as llama.cpp's imatrix.dat.
func writeIMatrix(path string, im *calib.IMatrix) error {
	if err := im.WriteFile(path); err != nil {
		return fmt.Errorf("compress: imatrix %s: %w", path, err)
	}
	return nil
}
