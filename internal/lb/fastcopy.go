package lb

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Body copies of the fast path. They stream: dst is flushed whenever src
// has nothing buffered, before blocking on a read, so nothing is held back
// and nothing bigger than the buffers is ever kept in memory.

// sideError says which side of a copy failed.
type sideError struct {
	err   error
	write bool // dst failed; otherwise src failed or sent garbage
}

func (e *sideError) Error() string { return e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }

func readErr(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &sideError{err: err}
}

func writeErr(err error) error { return &sideError{err: err, write: true} }

// isWriteErr reports whether a copy failed on its destination.
func isWriteErr(err error) bool {
	var se *sideError
	return errors.As(err, &se) && se.write
}

const errBadChunk = constError("malformed chunked encoding")

// fill makes sure src has buffered bytes, flushing dst first when it must
// block for them.
func fill(dst *bufio.Writer, src *bufio.Reader) error {
	if src.Buffered() > 0 {
		return nil
	}
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return writeErr(err)
		}
	}
	_, err := src.Peek(1)
	return err
}

// copyLength copies exactly n bytes.
func copyLength(dst *bufio.Writer, src *bufio.Reader, n int64) error {
	for n > 0 {
		if err := fill(dst, src); err != nil {
			if isWriteErr(err) {
				return err
			}
			return readErr(err)
		}
		k := int(min(int64(src.Buffered()), n))
		b, _ := src.Peek(k)
		if _, err := dst.Write(b); err != nil {
			return writeErr(err)
		}
		src.Discard(k)
		n -= int64(k)
	}
	return nil
}

// copyToEOF copies until src ends (a close-delimited body).
func copyToEOF(dst *bufio.Writer, src *bufio.Reader) error {
	for {
		if err := fill(dst, src); err != nil {
			if err == io.EOF {
				return nil
			}
			if isWriteErr(err) {
				return err
			}
			return readErr(err)
		}
		b, _ := src.Peek(src.Buffered())
		if _, err := dst.Write(b); err != nil {
			return writeErr(err)
		}
		src.Discard(len(b))
	}
}

// readLine returns the next line of src without its CRLF.
func readLine(dst *bufio.Writer, src *bufio.Reader) ([]byte, error) {
	if err := fill(dst, src); err != nil {
		if isWriteErr(err) {
			return nil, err
		}
		return nil, readErr(err)
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			err = errBadChunk
		}
		return nil, readErr(err)
	}
	// CRLF only: a bare LF inside chunked framing is refused, as net/http
	// does, since parsers disagreeing on it is a request-smuggling vector.
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, readErr(errBadChunk)
	}
	return line[:len(line)-2], nil
}

// copyChunked copies a chunked body, re-framing it canonically (sizes in
// hex, no extensions, CRLF line ends) so that the receiver cannot read it
// differently from the way it was checked here. With strip the framing and
// the trailers are dropped: the data is written raw (for an HTTP/1.0
// client, whose response then ends with the connection).
func copyChunked(dst *bufio.Writer, src *bufio.Reader, strip bool) error {
	var num [24]byte
	for {
		line, err := readLine(dst, src)
		if err != nil {
			return err
		}
		n, ok := parseChunkSize(line)
		if !ok {
			return readErr(errBadChunk)
		}
		if !strip {
			if _, err := dst.Write(appendChunkSize(num[:0], n)); err != nil {
				return writeErr(err)
			}
		}
		if n == 0 {
			break
		}
		if err := copyLength(dst, src, n); err != nil {
			return err
		}
		if line, err = readLine(dst, src); err != nil {
			return err
		}
		if len(line) != 0 {
			return readErr(errBadChunk)
		}
		if !strip {
			if _, err := dst.WriteString("\r\n"); err != nil {
				return writeErr(err)
			}
		}
	}
	// Trailer section, up to the empty line.
	for {
		line, err := readLine(dst, src)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) || !validFieldValue(line[colon+1:]) {
			return readErr(errBadChunk)
		}
		if !strip {
			if _, err := dst.Write(appendField(num[:0], line[:colon], trimOWS(line[colon+1:]))); err != nil {
				return writeErr(err)
			}
		}
	}
	if !strip {
		if _, err := dst.WriteString("\r\n"); err != nil {
			return writeErr(err)
		}
	}
	return nil
}
