package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
)

// pageToken is fleet's page token: little-endian uint16 Limit then Page
// (1-based), URL-safe base64 with padding.
type pageToken struct {
	Limit uint16
	Page  uint16
}

func (t pageToken) encode() string {
	var b [4]byte
	binary.LittleEndian.PutUint16(b[0:], t.Limit)
	binary.LittleEndian.PutUint16(b[2:], t.Page)
	return base64.URLEncoding.EncodeToString(b[:])
}

func (t pageToken) next() pageToken { return pageToken{Limit: t.Limit, Page: t.Page + 1} }

// decodePageToken decodes a token. Errors are fleet's: the base64 error,
// "EOF"/"unexpected EOF" for short input (extra bytes are ignored).
func decodePageToken(v string) (pageToken, error) {
	b, err := base64.URLEncoding.DecodeString(v)
	if err != nil {
		return pageToken{}, err
	}
	var t pageToken
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &t); err != nil {
		return pageToken{}, err
	}
	return t, nil
}

// pageFromQuery returns the requested page: page 1 without a token.
func (s *Server) pageFromQuery(q url.Values) (pageToken, error) {
	vals := q["nextPageToken"]
	switch {
	case len(vals) > 1:
		return pageToken{}, errors.New("too many values for page token")
	case len(vals) == 0:
		return pageToken{Limit: uint16(s.tokenLimit), Page: 1}, nil
	}
	t, err := decodePageToken(vals[0])
	if err != nil {
		return pageToken{}, err
	}
	if int(t.Limit) != s.tokenLimit {
		return pageToken{}, fmt.Errorf("token limit must be %d", s.tokenLimit)
	}
	if t.Page == 0 {
		return pageToken{}, errors.New("token page must be greater than zero")
	}
	return t, nil
}

// pageBounds returns the slice bounds of page t in n items and the token of
// the next page: set whenever this page is full (fleet's rule, so an exact
// multiple ends with an empty page).
func pageBounds(t pageToken, n int) (start, end int, next string) {
	start = (int(t.Page) - 1) * int(t.Limit)
	if start > n {
		start = n
	}
	end = start + int(t.Limit)
	if end > n {
		end = n
	}
	if end-start == int(t.Limit) && t.Page < 0xffff {
		next = t.next().encode()
	}
	return start, end, next
}
