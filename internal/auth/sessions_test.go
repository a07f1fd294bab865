package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testSessions() (*Sessions, *clock) {
	c := &clock{t: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewSessions()
	s.now = c.now
	return s, c
}

func TestLoginCodeIsSingleUseAndExpires(t *testing.T) {
	s, c := testSessions()
	code, exp, err := s.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 43 || exp != c.t.Add(LoginCodeTTL) {
		t.Fatalf("code %q (%d chars) expires %v", code, len(code), exp)
	}
	sess, sexp, err := s.Redeem(code)
	if err != nil || sess == "" || sess == code || sexp != c.t.Add(SessionTTL) {
		t.Fatalf("redeem: %q %v %v", sess, sexp, err)
	}
	if !s.Valid(sess) {
		t.Fatal("fresh session not valid")
	}
	if _, _, err := s.Redeem(code); !errors.Is(err, ErrBadLoginCode) {
		t.Fatalf("second use: %v", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), sess} {
		if _, _, err := s.Redeem(bad); !errors.Is(err, ErrBadLoginCode) {
			t.Errorf("redeem %q: %v", bad, err)
		}
		if bad != sess && s.Valid(bad) {
			t.Errorf("%q is a valid session", bad)
		}
	}

	late, _, _ := s.NewCode()
	c.t = c.t.Add(LoginCodeTTL)
	if _, _, err := s.Redeem(late); !errors.Is(err, ErrBadLoginCode) {
		t.Fatalf("code after %v: %v", LoginCodeTTL, err)
	}
	c.t = c.t.Add(SessionTTL - LoginCodeTTL - time.Second)
	if !s.Valid(sess) {
		t.Fatal("session ended early")
	}
	c.t = c.t.Add(time.Second)
	if s.Valid(sess) {
		t.Fatal("session outlived SessionTTL")
	}
}

// Only hashes are kept: the clear code and session are nowhere in memory
// that Sessions owns.
func TestSessionsKeepHashesOnly(t *testing.T) {
	s, _ := testSessions()
	code, _, _ := s.NewCode()
	if _, ok := s.codes[code]; ok || len(s.codes) != 1 {
		t.Fatalf("codes map: %v", s.codes)
	}
	sess, _, _ := s.Redeem(code)
	for k := range s.sessions {
		if k == sess || k != HashToken(sess) {
			t.Fatalf("session stored as %q", k)
		}
	}
}

func TestSessionsBounds(t *testing.T) {
	s, c := testSessions()
	for range maxCodes {
		if _, _, err := s.NewCode(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.NewCode(); err == nil || !strings.Contains(err.Error(), "too many unused login codes") {
		t.Fatalf("code %d: %v", maxCodes+1, err)
	}
	c.t = c.t.Add(LoginCodeTTL)
	if _, _, err := s.NewCode(); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	var first string
	for i := range maxSessions + 1 {
		code, _, _ := s.NewCode()
		sess, _, err := s.Redeem(code)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = sess
		}
		c.t = c.t.Add(time.Millisecond)
	}
	if len(s.sessions) != maxSessions || s.Valid(first) {
		t.Fatalf("%d sessions, oldest still valid: %v", len(s.sessions), s.Valid(first))
	}
}

func TestSessionsRandomFailure(t *testing.T) {
	s, _ := testSessions()
	s.rand = bytes.NewReader(nil)
	if _, _, err := s.NewCode(); err == nil {
		t.Fatal("no error without randomness")
	}
}
