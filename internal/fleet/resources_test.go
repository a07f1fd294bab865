package fleet

import "testing"

func TestFormatSizeCPU(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1K", 400 << 20: "400M", 1 << 30: "1G",
		1536 << 20: "1536M", 1<<30 + 1: "1G", 3 << 40: "3T", 1<<20 + 100<<10: "1124K", 1<<20 + 1: "1M"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 1: "0.001", 500: "0.5", 1000: "1", 1250: "1.25", 20000: "20"} {
		if got := FormatCPU(n); got != want {
			t.Errorf("FormatCPU(%d) = %q, want %q", n, got, want)
		}
	}
}
