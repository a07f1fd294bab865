package journal

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

var outputs = []string{"short", "short-iso", "short-precise", "cat", "json"}

// Outputs lists the output modes Format accepts.
func Outputs() []string { return append([]string(nil), outputs...) }

// Format renders e as journalctl -o output would, without a trailing
// newline. Times are shown in the local time zone.
func Format(e Entry, output string) (string, error) {
	switch output {
	case "short", "":
		return e.Time.Local().Format("Jan 02 15:04:05") + " " + prefix(e) + e.Line, nil
	case "short-precise":
		return e.Time.Local().Format("Jan 02 15:04:05.000000") + " " + prefix(e) + e.Line, nil
	case "short-iso":
		return e.Time.Local().Format("2006-01-02T15:04:05-0700") + " " + prefix(e) + e.Line, nil
	case "cat":
		return e.Line, nil
	case "json":
		m := map[string]string{
			"__REALTIME_TIMESTAMP": strconv.FormatInt(e.Time.UnixMicro(), 10),
			"_HOSTNAME":            e.Host,
			"SYSLOG_IDENTIFIER":    ident(e),
			"MESSAGE":              e.Line,
			"_SYSTEMD_UNIT":        e.Unit,
			"PRIORITY":             "6",
			"_TRANSPORT":           "stdout",
			"FLEET_STREAM":         e.Stream,
		}
		if e.Stream == StreamFleet {
			m["_TRANSPORT"] = "journal"
			m["UNIT"] = e.Unit
		}
		if e.Stream == StreamStderr {
			m["PRIORITY"] = "3"
		}
		if e.PID > 0 {
			m["_PID"] = strconv.Itoa(e.PID)
		}
		b, err := json.Marshal(m) // map keys come out sorted
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return "", fmt.Errorf("unknown output %q: valid outputs are %s", output, strings.Join(outputs, ", "))
}

func ident(e Entry) string {
	if e.Ident != "" {
		return e.Ident
	}
	return e.Unit
}

func prefix(e Entry) string {
	var b strings.Builder
	if e.Host != "" {
		b.WriteString(e.Host)
		b.WriteByte(' ')
	}
	b.WriteString(ident(e))
	if e.PID > 0 {
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(e.PID))
		b.WriteByte(']')
	}
	b.WriteString(": ")
	return b.String()
}
