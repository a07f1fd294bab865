package tmpl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// ParseResource parses a template resource file. file is used in messages.
// The file must hold a [template] table with src, dest and keys; unknown
// tables or keys are errors naming file and key.
func ParseResource(file string, data []byte) (*ResourceConfig, error) {
	doc, err := parseTOML(file, data)
	if err != nil {
		return nil, err
	}
	for name, tbl := range doc {
		if name == "" {
			for k, v := range tbl {
				return nil, &tomlError{file: file, line: v.line, msg: fmt.Sprintf("key %q outside the [template] table", k)}
			}
			continue
		}
		if name != "template" {
			return nil, &tomlError{file: file, msg: fmt.Sprintf("unknown table [%s] (only [template] is allowed)", name)}
		}
	}
	tbl, ok := doc["template"]
	if !ok {
		return nil, &tomlError{file: file, msg: "missing [template] table"}
	}
	rc := &ResourceConfig{File: file}
	// Visit keys in line order so the first problem reported is the first in the file.
	names := make([]string, 0, len(tbl))
	for k := range tbl {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return tbl[names[i]].line < tbl[names[j]].line })
	for _, k := range names {
		v := tbl[k]
		bad := func(format string, args ...any) error {
			return &tomlError{file: file, line: v.line, msg: fmt.Sprintf("key %q: ", k) + fmt.Sprintf(format, args...)}
		}
		want := func(kind tomlKind) error {
			if v.kind != kind {
				return bad("want %s, got %s", kind, v.kind)
			}
			return nil
		}
		switch k {
		case "src", "dest", "prefix", "owner", "group", "check_cmd", "reload_cmd":
			if err := want(tomlString); err != nil {
				return nil, err
			}
			switch k {
			case "src":
				rc.Src = v.str
			case "dest":
				rc.Dest = v.str
			case "prefix":
				rc.Prefix = v.str
			case "owner":
				rc.Owner = v.str
			case "group":
				rc.Group = v.str
			case "check_cmd":
				rc.CheckCmd = v.str
			case "reload_cmd":
				rc.ReloadCmd = v.str
			}
		case "keys":
			if err := want(tomlStringArray); err != nil {
				return nil, err
			}
			rc.Keys = v.strs
		case "uid", "gid":
			if err := want(tomlInt); err != nil {
				return nil, err
			}
			if v.num < 0 || v.num > 1<<31 {
				return nil, bad("id %d out of range", v.num)
			}
			if k == "uid" {
				rc.Owner = strconv.FormatInt(v.num, 10)
			} else {
				rc.Group = strconv.FormatInt(v.num, 10)
			}
		case "mode":
			if err := want(tomlString); err != nil {
				return nil, bad("want a string such as \"0644\", got %s", v.kind)
			}
			m, err := strconv.ParseUint(v.str, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, bad("invalid mode %q (want octal such as \"0644\")", v.str)
			}
			rc.Mode = fileModeFromUnix(uint32(m))
		default:
			return nil, &tomlError{file: file, line: v.line, msg: fmt.Sprintf("unknown key %q in [template]", k)}
		}
	}
	if _, dup := tbl["uid"]; dup {
		if _, dup := tbl["owner"]; dup {
			return nil, &tomlError{file: file, msg: "both owner and uid set"}
		}
	}
	if _, dup := tbl["gid"]; dup {
		if _, dup := tbl["group"]; dup {
			return nil, &tomlError{file: file, msg: "both group and gid set"}
		}
	}
	var missing []string
	if rc.Src == "" {
		missing = append(missing, "src")
	}
	if rc.Dest == "" {
		missing = append(missing, "dest")
	}
	if _, ok := tbl["keys"]; !ok {
		missing = append(missing, "keys")
	}
	if len(missing) > 0 {
		return nil, &tomlError{file: file, msg: "missing required key(s): " + strings.Join(missing, ", ")}
	}
	if len(rc.Keys) == 0 {
		return nil, &tomlError{file: file, line: tbl["keys"].line, msg: "keys is empty"}
	}
	for _, k := range rc.Keys {
		if k == "" {
			return nil, &tomlError{file: file, line: tbl["keys"].line, msg: "keys holds an empty key"}
		}
	}
	return rc, nil
}

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
