package bench

import "testing"

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   276.04us  300.10us  12.00ms   95.12%
    Req/Sec    60.10k     3.20k   66.00k    70.00%
  Latency Distribution
     50%  210.00us
     75%  310.50us
     90%  500.00us
     99%    1.23ms
  1203984 requests in 10.00s, 130.89MB read
  Socket errors: connect 1, read 12, write 3, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec: 120394.26
Transfer/sec:     13.09MB
`
	w, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.RPS != 120394.26 || w.Requests != 1203984 || w.P50 != 0.21 || w.P75 != 0.3105 || w.P90 != 0.5 || w.P99 != 1.23 {
		t.Errorf("parsed %+v", w)
	}
	if w.ConnectErr != 1 || w.ReadErr != 12 || w.WriteErr != 3 || w.TimeoutErr != 2 || w.Non2xx != 5 || w.errors() != 23 {
		t.Errorf("errors %+v", w)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("no error for output without figures")
	}
	for in, want := range map[string]float64{"2.00s": 2000, "1.50m": 90000, "812.00us": 0.812, "3.10ms": 3.1} {
		if got, err := parseWrkDuration(in); err != nil || got != want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
