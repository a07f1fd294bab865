package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// SocketGroup is the group that may use fleetd's unix socket besides its
// owner (root): members run fleetctl as admin without a token.
const SocketGroup = "fleet"

// listenUnix opens the API's unix socket at path: mode 0660 with group
// group when that group exists (and fleetd may give the socket to it),
// else 0600 (its owner only), whatever the process umask. Whoever can
// connect is admin, so nobody may connect before the mode is set: the
// socket is created in a fresh private (0700) directory next to path,
// given its mode and group there, and renamed into place.
func listenUnix(path, group string, log *slog.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// A short name: socket paths are limited to 107 bytes.
	tmp, err := os.MkdirTemp(dir, ".f")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	l, err := net.Listen("unix", tmpPath)
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	// It is unlinked under its final name (unixSocket.Close).
	ul.SetUnlinkOnClose(false)
	mode := socketMode(tmpPath, group, log)
	if err := os.Chmod(tmpPath, mode); err != nil {
		ul.Close()
		return nil, fmt.Errorf("chmod %v: %w", mode, err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		ul.Close()
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ul.Close()
		return nil, err
	}
	return &unixSocket{UnixListener: ul, path: path, file: fi}, nil
}

// socketMode gives the socket at path to group and returns 0660, or
// returns 0600 when the group does not exist or cannot be given.
func socketMode(path, group string, log *slog.Logger) os.FileMode {
	g, err := user.LookupGroup(group)
	if err != nil {
		var unknown user.UnknownGroupError
		if !errors.As(err, &unknown) {
			log.Warn("looking up the API socket's group; the socket is for its owner only", "group", group, "err", err)
		}
		return 0o600
	}
	gid, err := strconv.Atoi(g.Gid)
	if err == nil {
		err = os.Chown(path, -1, gid)
	}
	if err != nil {
		log.Warn("cannot give the API socket to its group; it is for its owner only", "group", group, "err", err)
		return 0o600
	}
	return 0o660
}

// unixSocket is a listener renamed into place: it reports and, on Close,
// removes its final path (unless another fleetd has replaced it).
type unixSocket struct {
	*net.UnixListener
	path string
	file os.FileInfo
}

func (u *unixSocket) Addr() net.Addr { return &net.UnixAddr{Name: u.path, Net: "unix"} }

func (u *unixSocket) Close() error {
	err := u.UnixListener.Close()
	if fi, serr := os.Lstat(u.path); serr == nil && os.SameFile(fi, u.file) {
		_ = os.Remove(u.path)
	}
	return err
}

// socketUsers names who may use the unix socket, for messages.
func socketUsers() string {
	owner := "its owner"
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		owner = u.Username
	}
	if _, err := user.LookupGroup(SocketGroup); err == nil {
		return owner + " or group " + SocketGroup
	}
	return owner
}
