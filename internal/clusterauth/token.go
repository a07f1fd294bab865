package clusterauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// TokenFileName is the cluster token's file under the data dir of the
// fleetd that bootstrapped the embedded etcd.
const TokenFileName = "cluster-token"

// RootUser is the etcd user whose password is the cluster token.
const RootUser = "root"

// MinTokenLength is the shortest cluster token accepted.
const MinTokenLength = 16

// GenerateToken returns a new token: 32 random bytes, base64url.
func GenerateToken(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CheckToken validates a token's text.
func CheckToken(tok string) error {
	if len(tok) < MinTokenLength {
		return fmt.Errorf("token too short: at least %d characters", MinTokenLength)
	}
	for _, r := range tok {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return errors.New("token must be printable ASCII without spaces")
		}
	}
	return nil
}

// ReadToken reads a token file. warning is set when the file may be read by
// group or others.
func ReadToken(path string) (tok, warning string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return "", "", fmt.Errorf("%s is a directory", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	tok = strings.TrimSpace(string(b))
	if tok == "" {
		return "", "", fmt.Errorf("%s is empty", path)
	}
	if err := CheckToken(tok); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("%s has mode %v: it holds a secret and should be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	return tok, warning, nil
}

// WriteToken writes tok to path with mode 0600 (whatever the umask),
// atomically: a crash leaves either no file or the whole token.
func WriteToken(path, tok string) error {
	if err := CheckToken(tok); err != nil {
		return err
	}
	return WriteSecret(path, []byte(tok+"\n"))
}

// WriteSecret writes data to path with mode 0600, atomically (temporary
// file, fsync, rename), whatever the umask.
func WriteSecret(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// EnsureToken returns the token in path, creating the file with a new
// token (from r) when it does not exist. created tells which.
func EnsureToken(path string, r io.Reader) (tok string, created bool, warning string, err error) {
	tok, warning, err = ReadToken(path)
	if err == nil {
		return tok, false, warning, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, "", err
	}
	tok, err = GenerateToken(r)
	if err != nil {
		return "", false, "", err
	}
	if err := WriteToken(path, tok); err != nil {
		return "", false, "", err
	}
	return tok, true, "", nil
}
