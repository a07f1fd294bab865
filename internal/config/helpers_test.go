package config

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

type fakeInfo struct {
	name string
	dir  bool
}

func (f fakeInfo) Name() string { return f.name }
func (f fakeInfo) Size() int64  { return 0 }
func (f fakeInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.dir }
func (f fakeInfo) Sys() any           { return nil }

// fakeFS is an in-memory file system: files map path to content, dirs is a
// set of directories.
type fakeFS struct {
	files map[string]string
	dirs  map[string]bool
}

func newFS(files map[string]string) *fakeFS {
	if files == nil {
		files = map[string]string{}
	}
	return &fakeFS{files: files, dirs: map[string]bool{}}
}

func (f *fakeFS) readFile(p string) ([]byte, error) {
	if f.dirs[p] {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrInvalid}
	}
	s, ok := f.files[p]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (f *fakeFS) writeFile(p string, data []byte) error {
	f.files[p] = string(data)
	return nil
}

func (f *fakeFS) stat(p string) (os.FileInfo, error) {
	if f.dirs[p] {
		return fakeInfo{name: p, dir: true}, nil
	}
	if _, ok := f.files[p]; ok {
		return fakeInfo{name: p}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

// load runs Load with a config file at /f.conf if file != "".
func load(t *testing.T, args, env []string, file string) (Config, error) {
	t.Helper()
	ffs := newFS(nil)
	if file != "" {
		ffs.files["/f.conf"] = file
		args = append([]string{"--config", "/f.conf"}, args...)
	}
	return Load(args, env, ffs.readFile, ffs.stat)
}

func mustLoad(t *testing.T, args, env []string, file string) Config {
	t.Helper()
	c, err := load(t, args, env, file)
	if err != nil {
		t.Fatalf("Load(%q, %q, %q): %v", args, env, file, err)
	}
	return c
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func errNotExist() error { return fs.ErrNotExist }
