package fleet

import (
	"strconv"
	"strings"
)

// FormatSize renders bytes as the largest 1024-based unit that divides it
// ("400M", "1G", "1536K"), or with one decimal when none does ("1.3G").
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	for i := len(units) - 1; i >= 0; i-- {
		u := int64(1) << (10 * (i + 1))
		if n >= u && n%u == 0 {
			return strconv.FormatInt(n/u, 10) + units[i:i+1]
		}
	}
	for i := len(units) - 1; i >= 0; i-- {
		u := int64(1) << (10 * (i + 1))
		if n >= u {
			s := strconv.FormatFloat(float64(n)/float64(u), 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + units[i:i+1]
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatCPU renders milli-CPUs as CPUs: 500 is "0.5", 2000 is "2".
func FormatCPU(milli int64) string {
	s := strconv.FormatInt(milli/1000, 10)
	if f := milli % 1000; f != 0 {
		s += "." + strings.TrimRight(strconv.FormatInt(1000+f, 10)[1:], "0")
	}
	return s
}
