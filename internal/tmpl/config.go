package tmpl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// ResourceConfig is one template resource, read from a conf.d/*.toml file.
type ResourceConfig struct {
	// File is the TOML file the resource came from.
	File string
	// Src is the template file, relative to <confdir>/templates.
	Src string
	// Dest is the file written.
	Dest string
	// Keys are the etcd keys (each read with everything below it), relative to
	// Prefix.
	Keys []string
	// Prefix is prepended to every key, after the daemon's global prefix.
	Prefix string
	// Owner and Group are a user/group name or a numeric id; empty means
	// "leave as created" (the daemon's user). UID and GID are confd's
	// numeric spellings and are folded into Owner and Group.
	Owner, Group string
	// Mode is the file mode of Dest; zero means "keep the existing Dest's
	// mode, or 0644 for a new file".
	Mode fs.FileMode
	// CheckCmd runs on the staged file ({{.src}}) before it replaces Dest.
	CheckCmd string
	// ReloadCmd runs after Dest has been replaced.
	ReloadCmd string
}

// Name is the resource's name in logs and /status: the TOML file's base name.
func (rc *ResourceConfig) Name() string { return filepath.Base(rc.File) }

// fileModeFromUnix converts Unix permission bits (including setuid, setgid
// and sticky) to an fs.FileMode.
func fileModeFromUnix(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// LoadConfDir reads every <confdir>/conf.d/*.toml, sorted by name. An error
// in any file fails the load (naming the file).
func LoadConfDir(confDir string) ([]*ResourceConfig, error) {
	files, err := filepath.Glob(filepath.Join(confDir, "conf.d", "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		if _, err := os.Stat(filepath.Join(confDir, "conf.d")); err != nil {
			return nil, fmt.Errorf("confdir %s: %w", confDir, err)
		}
		return nil, fmt.Errorf("confdir %s: no template resources (conf.d/*.toml)", confDir)
	}
	var out []*ResourceConfig
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rc, err := ParseResource(f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, rc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// joinKey joins prefixes and a key into an absolute etcd key, like confd.
func joinKey(parts ...string) string {
	return path.Join(append([]string{"/"}, parts...)...)
}
