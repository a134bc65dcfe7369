package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/model"
)

// TestRunOnTinyCheckpoint runs every measurement on the tiny reference
// checkpoint (a directory), mapped and resident.
func TestRunOnTinyCheckpoint(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma")
	for _, resident := range []bool{false, true} {
		r, err := Run(Options{Shape: dir, Threads: 1, Prefill: 40, Decode: 5, Image: true, Resident: resident, BandwidthBytes: 32 << 20, Batch: []int{1, 3}, BlockSize: 8, Rounds: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Batch) != 2 || r.Batch[0].Sequences != 1 || r.Batch[0].Speedup != 1 || r.Batch[1].Sequences != 3 || r.Batch[1].TokensPerS <= 0 ||
			r.Batch[1].StepSeconds <= 0 || r.Batch[1].BlockSize != 8 || r.Batch[1].Rounds != 3 {
			t.Errorf("batched decode %+v", r.Batch)
		}
		if r.PrefillTokensPerS <= 0 || r.DecodeTokensPerS <= 0 || r.ImageSeconds <= 0 || r.ReadBandwidthGBs <= 0 ||
			r.DecodeFractionFloor <= 0 || r.WeightBytes <= 0 || r.ImageTokensPerImage != 16 || r.WeightsResident != resident {
			t.Errorf("result %+v", r)
		}
	}
}

// TestBatchSizes: a batch size out of range is refused with its value.
func TestBatchSizes(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma-text")
	for _, b := range []int{0, MaxBatch + 1} {
		_, err := Run(Options{Shape: dir, Threads: 1, Prefill: 4, Decode: 2, BandwidthBytes: 1 << 20, Batch: []int{2, b}})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("batch size %d", b)) {
			t.Errorf("batch size %d: %v", b, err)
		}
	}
}

// TestRefusesWhatDoesNotFit checks the up-front memory check: the 27B shape
// with a context no machine has memory for, in bf16 and as Q4_K_M (whose
// weights are counted matrix by matrix in their types).
func TestRefusesWhatDoesNotFit(t *testing.T) {
	cfg, err := model.ParseConfig([]byte(model.Shapes["medgemma-27b-text-it"]))
	if err != nil {
		t.Fatal(err)
	}
	err = checkFits(cfg, 1<<30, os.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "GB of memory needed (weights 54.0 GB") {
		t.Fatalf("error %v", err)
	}
	err = checkFits(cfg, 1<<30, os.TempDir(), quantTypeOf("q4_k_m", cfg.Text.NumHiddenLayers))
	if err == nil || !strings.Contains(err.Error(), "GB of memory needed (weights 16.5 GB") {
		t.Fatalf("error %v", err)
	}
	if quantTypeOf("q3_k", 62) != nil {
		t.Fatal("q3_k is not a type bench writes")
	}
}

// BenchmarkMedGemma4B measures the real 4B shape on random weights (about
// 9 GB written to a temporary directory; run it explicitly with
// -bench MedGemma4B -benchtime 1x).
func BenchmarkMedGemma4B(b *testing.B) {
	for b.Loop() {
		r, err := Run(Options{Shape: "medgemma-4b-it", Prefill: 512, Decode: 128, Resident: true})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.PrefillTokensPerS, "prefill-tok/s")
		b.ReportMetric(r.DecodeTokensPerS, "decode-tok/s")
		b.ReportMetric(r.DecodeFractionFloor, "decode-of-floor")
		b.ReportMetric(r.LoadSeconds, "load-s")
	}
}
