package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Dashboard login (fleetctl dashboard): an admin asks fleetd for a login
// code, opens the URL carrying it, and fleetd exchanges the code for a
// session cookie. Codes and sessions live in the memory of one fleetd;
// only hashes of them are kept.
const (
	// LoginPath is the dashboard's login page: GET LoginPath?code=<code>
	// exchanges a code for a session cookie.
	LoginPath = "/ui/login"
	// SessionCookie names the dashboard's session cookie.
	SessionCookie = "fleet_session"
	// LoginCodeTTL is how long a login code may be used (once).
	LoginCodeTTL = 2 * time.Minute
	// SessionTTL is how long a dashboard session lasts.
	SessionTTL = 12 * time.Hour

	secretBytes = 32
	maxCodes    = 256
	maxSessions = 1024
)

// ErrBadLoginCode: the code is unknown, expired or was used already.
var ErrBadLoginCode = errors.New("this login link is not valid: it was used already, has expired (after 2 minutes), or was made by another fleetd")

// Sessions holds the pending login codes and the open dashboard sessions.
// It is safe for concurrent use.
type Sessions struct {
	now  func() time.Time
	rand io.Reader

	mu       sync.Mutex
	codes    map[string]time.Time // HashToken(code) → expiry
	sessions map[string]time.Time // HashToken(session) → expiry
}

// NewSessions returns an empty Sessions.
func NewSessions() *Sessions {
	return &Sessions{now: time.Now, rand: rand.Reader, codes: map[string]time.Time{}, sessions: map[string]time.Time{}}
}

// NewCode returns a fresh single-use login code and its expiry.
func (s *Sessions) NewCode() (string, time.Time, error) {
	code, err := s.secret()
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	purge(s.codes, now)
	if len(s.codes) >= maxCodes {
		return "", time.Time{}, fmt.Errorf("too many unused login codes (%d): wait %v for them to expire", maxCodes, LoginCodeTTL)
	}
	exp := now.Add(LoginCodeTTL)
	s.codes[HashToken(code)] = exp
	return code, exp, nil
}

// Redeem uses up code and returns a new session and its expiry, or
// ErrBadLoginCode.
func (s *Sessions) Redeem(code string) (string, time.Time, error) {
	h := HashToken(code)
	s.mu.Lock()
	exp, ok := s.codes[h]
	delete(s.codes, h)
	now := s.now()
	s.mu.Unlock()
	if !ok || !now.Before(exp) {
		return "", time.Time{}, ErrBadLoginCode
	}
	session, err := s.secret()
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	purge(s.sessions, now)
	if len(s.sessions) >= maxSessions {
		dropOldest(s.sessions)
	}
	exp = now.Add(SessionTTL)
	s.sessions[HashToken(session)] = exp
	return session, exp, nil
}

// Valid reports whether session is an open session.
func (s *Sessions) Valid(session string) bool {
	if session == "" {
		return false
	}
	h := HashToken(session)
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[h]
	if ok && !s.now().Before(exp) {
		delete(s.sessions, h)
		return false
	}
	return ok
}

func (s *Sessions) secret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("dashboard login: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// purge drops the entries of m that expired by now.
func purge(m map[string]time.Time, now time.Time) {
	for k, exp := range m {
		if !now.Before(exp) {
			delete(m, k)
		}
	}
}

// dropOldest drops the entry of m that expires first.
func dropOldest(m map[string]time.Time) {
	var first string
	var at time.Time
	for k, exp := range m {
		if first == "" || exp.Before(at) {
			first, at = k, exp
		}
	}
	delete(m, first)
}
