package calendar

import (
	"errors"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s unavailable: %v", name, err)
	}
	return loc
}

// utc parses "2006-01-02 15:04:05" in UTC.
func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseNormalizeNext(t *testing.T) {
	tests := []struct {
		spec, norm string
		from       string   // UTC
		next       []string // UTC; nil with none=true means "never"
		none       bool
	}{
		{"Mon..Fri 09:00", "Mon..Fri *-*-* 09:00:00", "2026-12-04 10:00:00",
			[]string{"2026-12-07 09:00:00", "2026-12-08 09:00:00", "2026-12-09 09:00:00", "2026-12-10 09:00:00", "2026-12-11 09:00:00", "2026-12-14 09:00:00"}, false},
		{"Sat,Sun", "Sat,Sun *-*-* 00:00:00", "2026-12-03 17:00:00",
			[]string{"2026-12-05 00:00:00", "2026-12-06 00:00:00", "2026-12-12 00:00:00"}, false},
		{"monday,TUESDAY", "Mon,Tue *-*-* 00:00:00", "2026-12-03 17:00:00",
			[]string{"2026-12-07 00:00:00", "2026-12-08 00:00:00", "2026-12-14 00:00:00"}, false},
		{"Mon-Wed,Fri", "Mon..Wed,Fri *-*-* 00:00:00", "2026-12-03 17:00:00",
			[]string{"2026-12-04 00:00:00", "2026-12-07 00:00:00", "2026-12-08 00:00:00"}, false},
		{"Mon..Sun 1:2", "*-*-* 01:02:00", "2026-12-03 17:00:00",
			[]string{"2026-12-04 01:02:00"}, false},
		// month ends
		{"*-*-31", "*-*-31 00:00:00", "2026-01-31 00:00:01",
			[]string{"2026-03-31 00:00:00", "2026-05-31 00:00:00", "2026-07-31 00:00:00", "2026-08-31 00:00:00"}, false},
		{"*-*~1", "*-*~01 00:00:00", "2026-01-31 00:00:00",
			[]string{"2026-02-28 00:00:00", "2026-03-31 00:00:00", "2026-04-30 00:00:00"}, false},
		{"*-02~1", "*-02~01 00:00:00", "2026-12-03 00:00:00",
			[]string{"2027-02-28 00:00:00", "2028-02-29 00:00:00", "2029-02-28 00:00:00"}, false},
		{"*-02~03 12:00", "*-02~03 12:00:00", "2027-01-01 00:00:00",
			[]string{"2027-02-26 12:00:00", "2028-02-27 12:00:00"}, false},
		{"Mon *-05~07/1", "Mon *-05~07/1 00:00:00", "2026-12-03 00:00:00",
			[]string{"2027-05-31 00:00:00", "2028-05-29 00:00:00", "2029-05-28 00:00:00"}, false},
		{"*-*~03/2", "*-*~03/2 00:00:00", "2026-12-03 00:00:00",
			[]string{"2026-12-29 00:00:00", "2026-12-31 00:00:00", "2027-01-29 00:00:00"}, false},
		{"*-*~1..5/2", "*-*~01..05/2 00:00:00", "2026-12-03 00:00:00",
			[]string{"2026-12-27 00:00:00", "2026-12-29 00:00:00", "2026-12-31 00:00:00", "2027-01-27 00:00:00"}, false},
		// leap years
		{"*-02-29", "*-02-29 00:00:00", "2026-12-03 00:00:00",
			[]string{"2028-02-29 00:00:00", "2032-02-29 00:00:00"}, false},
		{"Mon *-02-29", "Mon *-02-29 00:00:00", "2016-03-01 00:00:00",
			[]string{"2044-02-29 00:00:00", "2072-02-29 00:00:00"}, false},
		{"2100-02-29", "2100-02-29 00:00:00", "2026-01-01 00:00:00", nil, true},
		{"*-02-30", "*-02-30 00:00:00", "2026-01-01 00:00:00", nil, true},
		// year rollover
		{"hourly", "*-*-* *:00:00", "2026-12-31 23:30:00",
			[]string{"2027-01-01 00:00:00", "2027-01-01 01:00:00"}, false},
		{"*-12-31 23:59:59", "*-12-31 23:59:59", "2026-12-31 23:59:59",
			[]string{"2027-12-31 23:59:59"}, false},
		{"yearly", "*-01-01 00:00:00", "2026-12-31 23:59:59.999999",
			[]string{"2027-01-01 00:00:00", "2028-01-01 00:00:00"}, false},
		{"annually", "*-01-01 00:00:00", "2027-01-01 00:00:00",
			[]string{"2028-01-01 00:00:00"}, false},
		// repetitions
		{"*-*-1/2", "*-*-01/2 00:00:00", "2026-01-29 12:00:00",
			[]string{"2026-01-31 00:00:00", "2026-02-01 00:00:00", "2026-02-03 00:00:00"}, false},
		{"*:0/15", "*-*-* *:00/15:00", "2026-12-03 17:49:55",
			[]string{"2026-12-03 18:00:00", "2026-12-03 18:15:00", "2026-12-03 18:30:00", "2026-12-03 18:45:00", "2026-12-03 19:00:00"}, false},
		{"*:*:0/2", "*-*-* *:*:00/2", "2026-12-31 23:59:57",
			[]string{"2026-12-31 23:59:58", "2027-01-01 00:00:00", "2027-01-01 00:00:02"}, false},
		{"*:*:0/0.5", "*-*-* *:*:00/0.500000", "2026-12-03 17:49:55",
			[]string{"2026-12-03 17:49:55.5", "2026-12-03 17:49:56", "2026-12-03 17:49:56.5"}, false},
		{"*:*:1.5", "*-*-* *:*:01.500000", "2026-12-03 17:49:55",
			[]string{"2026-12-03 17:50:01.5", "2026-12-03 17:51:01.5"}, false},
		{"0..23/6:00", "*-*-* 00..18/6:00:00", "2026-12-03 17:49:55",
			[]string{"2026-12-03 18:00:00", "2026-12-04 00:00:00", "2026-12-04 06:00:00"}, false},
		{"*:0/15:0/30", "*-*-* *:00/15:00/30", "2026-12-03 17:49:55",
			[]string{"2026-12-03 18:00:00", "2026-12-03 18:00:30", "2026-12-03 18:15:00"}, false},
		{"2026/2-1-1", "2026/2-01-01 00:00:00", "2026-12-03 00:00:00",
			[]string{"2028-01-01 00:00:00", "2030-01-01 00:00:00"}, false},
		{"*-*-1..31/10", "*-*-01..31/10 00:00:00", "2026-12-03 00:00:00",
			[]string{"2026-12-11 00:00:00", "2026-12-21 00:00:00", "2026-12-31 00:00:00", "2027-01-01 00:00:00"}, false},
		{"*-*-1,15,3,1", "*-*-01,03,15 00:00:00", "2026-12-03 17:00:00",
			[]string{"2026-12-15 00:00:00", "2027-01-01 00:00:00", "2027-01-03 00:00:00"}, false},
		{"*-*-1..5,3", "*-*-01..05,03 00:00:00", "2026-12-03 17:00:00",
			[]string{"2026-12-04 00:00:00", "2026-12-05 00:00:00", "2027-01-01 00:00:00"}, false},
		{"*:*:1..2/1", "*-*-* *:*:01..02", "2026-12-03 17:50:00",
			[]string{"2026-12-03 17:50:01", "2026-12-03 17:50:02", "2026-12-03 17:51:01"}, false},
		{"*-*-* *:*:00/1", "*-*-* *:*:*", "2026-12-03 17:50:00.5",
			[]string{"2026-12-03 17:50:01", "2026-12-03 17:50:02"}, false},
		// shorthands
		{"minutely", "*-*-* *:*:00", "2026-12-03 17:49:55", []string{"2026-12-03 17:50:00", "2026-12-03 17:51:00"}, false},
		{"daily", "*-*-* 00:00:00", "2026-12-03 17:49:55", []string{"2026-12-04 00:00:00"}, false},
		{"weekly", "Mon *-*-* 00:00:00", "2026-12-03 17:49:55", []string{"2026-12-07 00:00:00", "2026-12-14 00:00:00"}, false},
		{"monthly", "*-*-01 00:00:00", "2026-12-03 17:49:55", []string{"2027-01-01 00:00:00", "2027-02-01 00:00:00"}, false},
		{"quarterly", "*-01,04,07,10-01 00:00:00", "2026-12-03 17:49:55", []string{"2027-01-01 00:00:00", "2027-04-01 00:00:00", "2027-07-01 00:00:00", "2027-10-01 00:00:00"}, false},
		{"semiannually", "*-01,07-01 00:00:00", "2026-12-03 17:49:55", []string{"2027-01-01 00:00:00", "2027-07-01 00:00:00", "2028-01-01 00:00:00"}, false},
		{"daily UTC", "*-*-* 00:00:00 UTC", "2026-12-03 17:49:55", []string{"2026-12-04 00:00:00"}, false},
		// dates and two-digit years
		{"12-25", "*-12-25 00:00:00", "2026-12-03 00:00:00", []string{"2026-12-25 00:00:00", "2027-12-25 00:00:00"}, false},
		{"26-01-01", "2026-01-01 00:00:00", "2026-12-03 00:00:00", nil, true},
		{"69-01-01", "2069-01-01 00:00:00", "2026-12-03 00:00:00", []string{"2069-01-01 00:00:00"}, false},
		{"70-01-01", "1970-01-01 00:00:00", "2026-12-03 00:00:00", nil, true},
		{"2199-12-31 23:59:59", "2199-12-31 23:59:59", "2199-12-31 23:59:58", []string{"2199-12-31 23:59:59"}, false},
		{"2026-12-03 17:50:00.5", "2026-12-03 17:50:00.500000", "2026-12-03 17:50:00", []string{"2026-12-03 17:50:00.5"}, false},
		{"Mon..Fri 9-5", "Mon..Fri *-09-05 00:00:00", "2026-12-03 00:00:00", []string{"2028-09-05 00:00:00", "2029-09-05 00:00:00"}, false},
		{"@1600000000", "2020-09-13 12:26:40 UTC", "2020-09-13 12:26:39", []string{"2020-09-13 12:26:40"}, false},
		{"*:001", "*-*-* *:01:00", "2026-12-03 17:49:55", []string{"2026-12-03 18:01:00"}, false},
		{"9:00,30", "*-*-* 09:00,30:00", "2026-12-03 17:49:55", []string{"2026-12-04 09:00:00", "2026-12-04 09:30:00", "2026-12-05 09:00:00"}, false},
		{"*-*-* 09:00:00 utc", "*-*-* 09:00:00 UTC", "2026-12-03 17:49:55", []string{"2026-12-04 09:00:00"}, false},
		// time zones (results in UTC)
		{"09:00 Europe/Berlin", "*-*-* 09:00:00 Europe/Berlin", "2026-12-03 17:49:55", []string{"2026-12-04 08:00:00", "2026-12-05 08:00:00"}, false},
		{"*-*-1 1:2 America/New_York", "*-*-01 01:02:00 America/New_York", "2026-12-03 17:49:55",
			[]string{"2027-01-01 06:02:00", "2027-02-01 06:02:00", "2027-03-01 06:02:00", "2027-04-01 05:02:00"}, false},
		// DST, Europe/Berlin: 2027-03-28 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
		{"02:30 Europe/Berlin", "*-*-* 02:30:00 Europe/Berlin", "2027-03-27 00:00:00",
			[]string{"2027-03-27 01:30:00", "2027-03-29 00:30:00"}, false}, // 28th skipped: 02:30 does not exist
		{"02:30 Europe/Berlin", "*-*-* 02:30:00 Europe/Berlin", "2026-10-24 12:00:00",
			[]string{"2026-10-25 00:30:00", "2026-10-26 01:30:00"}, false}, // 25th fires once, at 02:30 CEST
		{"*:0/30 Europe/Berlin", "*-*-* *:00/30:00 Europe/Berlin", "2026-10-24 23:45:00",
			[]string{"2026-10-25 00:00:00", "2026-10-25 00:30:00", "2026-10-25 02:00:00", "2026-10-25 02:30:00"}, false},
		{"*:0/30 Europe/Berlin", "*-*-* *:00/30:00 Europe/Berlin", "2026-10-25 01:10:00", // inside the repeated hour
			[]string{"2026-10-25 02:00:00"}, false},
		{"*:0/30 Europe/Berlin", "*-*-* *:00/30:00 Europe/Berlin", "2027-03-28 00:15:00",
			[]string{"2027-03-28 00:30:00", "2027-03-28 01:00:00", "2027-03-28 01:30:00"}, false},
		// DST, America/New_York: 2027-03-14 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
		{"02:15 America/New_York", "*-*-* 02:15:00 America/New_York", "2027-03-13 12:00:00",
			[]string{"2027-03-15 06:15:00"}, false},
		{"01:30 America/New_York", "*-*-* 01:30:00 America/New_York", "2026-10-31 12:00:00",
			[]string{"2026-11-01 05:30:00", "2026-11-02 06:30:00"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := s.Normalized(); got != tc.norm {
				t.Errorf("Normalized() = %q, want %q", got, tc.norm)
			}
			at := utc(tc.from)
			if tc.none {
				if n, ok := s.Next(at); ok {
					t.Errorf("Next(%v) = %v, want none", at, n)
				}
				return
			}
			for i, want := range tc.next {
				n, ok := s.Next(at)
				if !ok {
					t.Fatalf("Next #%d after %v: none, want %s", i+1, at, want)
				}
				if !n.Equal(utc(want)) {
					t.Fatalf("Next #%d after %v = %v, want %s UTC", i+1, at, n.UTC(), want)
				}
				at = n
			}
		})
	}
}

// A spec without a time zone uses the location of the instant given.
func TestNextUsesLocationOfAfter(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	s := MustParse("09:00")
	n, ok := s.Next(time.Date(2026, 12, 3, 12, 0, 0, 0, berlin))
	if !ok || !n.Equal(time.Date(2026, 12, 4, 9, 0, 0, 0, berlin)) || n.Location() != berlin {
		t.Fatalf("Next = %v, %v", n, ok)
	}
	n, _ = MustParse("09:00 UTC").Next(time.Date(2026, 12, 3, 12, 0, 0, 0, berlin))
	if !n.Equal(utc("2026-12-04 09:00:00")) {
		t.Fatalf("UTC spec: Next = %v", n)
	}
}

func TestNextIsStrictlyAfterWithSubMicroseconds(t *testing.T) {
	s := MustParse("09:00")
	at := utc("2026-12-03 09:00:00").Add(500 * time.Nanosecond)
	if n, _ := s.Next(at); !n.Equal(utc("2026-12-04 09:00:00")) {
		t.Fatalf("Next = %v", n)
	}
	at = utc("2026-12-03 09:00:00").Add(-500 * time.Nanosecond)
	if n, _ := s.Next(at); !n.Equal(utc("2026-12-03 09:00:00")) {
		t.Fatalf("Next = %v", n)
	}
}

func TestPrev(t *testing.T) {
	tests := []struct {
		spec, at, want string
		none           bool
	}{
		{"*:*:0/2", "2026-12-03 17:49:55", "2026-12-03 17:49:54", false},
		{"*:*:0/2", "2026-12-03 17:49:54", "2026-12-03 17:49:54", false}, // at or before
		{"Mon..Fri 09:00", "2026-12-07 08:00:00", "2026-12-04 09:00:00", false},
		{"*-02~1", "2028-12-03 00:00:00", "2028-02-29 00:00:00", false},
		{"yearly", "2027-01-01 00:00:00", "2027-01-01 00:00:00", false},
		{"2030-01-01", "2026-01-01 00:00:00", "", true},
		{"@1600000000", "2026-01-01 00:00:00", "2020-09-13 12:26:40", false},
	}
	for _, tc := range tests {
		p, ok := MustParse(tc.spec).Prev(utc(tc.at))
		if tc.none {
			if ok {
				t.Errorf("%s: Prev(%s) = %v, want none", tc.spec, tc.at, p)
			}
			continue
		}
		if !ok || !p.Equal(utc(tc.want)) {
			t.Errorf("%s: Prev(%s) = %v %v, want %s", tc.spec, tc.at, p, ok, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		spec   string
		msg    string
		token  string
		offset int
	}{
		{"Mon..Fry 09:00", "unknown weekday", "Fry", 5},
		{"", "empty spec", "", 0},
		{"Moo", "unknown weekday", "Moo", 0},
		{"Mon,Wed,Frx", "unknown weekday", "Frx", 8},
		{"Sat..Mon", "weekday range goes backwards", "Sat..Mon", 0},
		{"Mon.. 09:00", "missing end of weekday range", "Mon..", 5},
		{"*-*-32", "day out of range", "32", 4},
		{"*-13-01", "month out of range", "13", 2},
		{"*-0-01", "month out of range", "0", 2},
		{"1969-01-01", "year out of range", "1969", 0},
		{"2300-01-01", "year out of range", "2300", 0},
		{"*-*-5..1", "day range goes backwards", "5..1", 4},
		{"*-*-1..32", "day out of range", "32", 7},
		{"*-*-1/0", "repetition must be positive, got", "0", 6},
		{"*-*-x", "invalid day", "x", 4},
		{"2026-01-01 24:00", "hour out of range", "24", 11},
		{"2026-01-01 23:60", "minute out of range", "60", 14},
		{"*:*:60", "second out of range", "60", 4},
		{"*:*:1.", "invalid second", "1.", 4},
		{"*:*:59.9999999", "invalid second", "59.9999999", 4},
		{"09:00 Mars/Olympus", "unknown time zone", "Mars/Olympus", 6},
		{"09:00 local", "unknown time zone", "local", 6},
		{"Mon..Fri 9", "expected a date (Y-M-D) or time (H:M[:S])", "9", 9},
		{"09", "expected a date (Y-M-D) or time (H:M[:S])", "09", 0},
		{"*-*-*/2", "\"*\" cannot be combined in a list or with a repetition, in", "*/2", 4},
		{"*/2:00", "\"*\" cannot be combined in a list or with a repetition, in", "*/2", 0},
		{"2026-*", "month out of range", "2026", 0}, // two parts are MONTH-DAY
		{"1-2-3-4", "date must be YEAR-MONTH-DAY or MONTH-DAY", "1-2-3-4", 0},
		{"*~02-01", "\"~\" must separate month and day", "*~02-01", 1},
		{"*-*~*", "\"~\" needs a day number, not", "*", 4},
		{"*-*~0", "day out of range", "0", 4},
		{"1:2:3:4", "time must be HOUR:MINUTE[:SECOND]", "1:2:3:4", 0},
		{"*-*-1,,2", "empty day in list", "1,,2", 4},
		{"2026-01-01 00:00 Mon", "unknown time zone", "Mon", 17},
		{"09:00 Mon", "unknown time zone", "Mon", 6},
		{"@x", "invalid epoch timestamp", "@x", 0},
		{"@99999999999", "epoch timestamp out of range", "@99999999999", 0},
		{"Mon 09:00 2026-01-01", "expected a date (Y-M-D) or time (H:M[:S])", "2026-01-01", 10},
	}
	for _, tc := range tests {
		_, err := Parse(tc.spec)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", tc.spec, err)
			continue
		}
		if pe.Msg != tc.msg || pe.Token != tc.token || pe.Offset != tc.offset {
			t.Errorf("Parse(%q): got msg=%q token=%q offset=%d, want msg=%q token=%q offset=%d (%v)",
				tc.spec, pe.Msg, pe.Token, pe.Offset, tc.msg, tc.token, tc.offset, err)
		}
	}
	_, err := Parse("Mon..Fry 09:00")
	if want := `invalid calendar spec "Mon..Fry 09:00": unknown weekday "Fry" at offset 5`; err == nil || err.Error() != want {
		t.Errorf("error text = %v, want %s", err, want)
	}
}
