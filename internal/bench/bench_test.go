package bench

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStat(t *testing.T) {
	tests := []struct {
		in                         []float64
		median, p10, p90, min, max float64
	}{
		{[]float64{3}, 3, 3, 3, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1.3, 3.7, 1, 4},
		{[]float64{10, 0, 5, 1, 2, 3, 4, 6, 7, 8, 9}, 5, 1, 9, 0, 10},
	}
	for _, tt := range tests {
		s := stat(tt.in)
		got := []float64{s.Median, s.P10, s.P90, s.Min, s.Max}
		want := []float64{tt.median, tt.p10, tt.p90, tt.min, tt.max}
		for i := range got {
			if d := got[i] - want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("stat(%v) = %+v, want median %v p10 %v p90 %v min %v max %v", tt.in, s, tt.median, tt.p10, tt.p90, tt.min, tt.max)
				break
			}
		}
	}
	if s := stat(nil); s.N != 0 {
		t.Errorf("stat(nil) = %+v", s)
	}
}

// SpliceMarked replaces only what lies between the markers, and appends the
// block to a document without them.
func TestSplice(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ doc, want string }{
		{"head\n" + Begin + "\nold\n" + End + "\ntail\n", "head\n" + Begin + "\n\nnew\n\n" + End + "\ntail\n"},
		{"head\n", "head\n" + Begin + "\n\nnew\n\n" + End + "\n"},
		{"", Begin + "\n\nnew\n\n" + End + "\n"},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, "doc.md")
		if err := os.WriteFile(p, []byte(tt.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := SpliceMarked(p, Begin, End, []byte("new\n")); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		if string(got) != tt.want {
			t.Errorf("%d: SpliceMarked gave %q, want %q", i, got, tt.want)
		}
	}
}
