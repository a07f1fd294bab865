package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// WriteFileMkdir writes data to path with mode 0644, creating the parent
// directories: the default writeFile of ResolveMachineID.
func WriteFileMkdir(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// ResolveMachineID fills in MachineID unless it was configured: from
// SystemMachineIDFile if it holds an ID; otherwise from <DataDir>/machine-id;
// otherwise a new random 32-hex-digit ID is generated and written there, so
// later starts reuse it. A file with invalid content is an error, an empty
// or missing one is skipped. EtcdName defaults to the short machine ID, which
// must then appear in EtcdInitialCluster if that is set.
//
// Nil arguments default to os.ReadFile, WriteFileMkdir and crypto/rand.
func (c *Config) ResolveMachineID(readFile func(string) ([]byte, error), writeFile func(string, []byte) error, random io.Reader) error {
	if readFile == nil {
		readFile = os.ReadFile
	}
	if writeFile == nil {
		writeFile = WriteFileMkdir
	}
	if random == nil {
		random = rand.Reader
	}
	if c.MachineID == "" {
		id, err := c.findMachineID(readFile, writeFile, random)
		if err != nil {
			return err
		}
		c.MachineID = id
	}
	if c.EtcdName == "" {
		c.EtcdName = fleet.ShortMachineID(c.MachineID)
		if c.EtcdInitialCluster != "" && c.EmbeddedEtcd() {
			names, err := parseInitialCluster(c.EtcdInitialCluster)
			if err != nil {
				return &Error{Source: "etcd_initial_cluster", Key: "etcd_initial_cluster", Err: err}
			}
			if !names[c.EtcdName] {
				return fmt.Errorf("etcd_name: the default member name %q (short machine ID) is not in etcd_initial_cluster %q: set etcd_name", c.EtcdName, c.EtcdInitialCluster)
			}
		}
	}
	return nil
}

func (c *Config) findMachineID(readFile func(string) ([]byte, error), writeFile func(string, []byte) error, random io.Reader) (string, error) {
	stored := filepath.Join(c.DataDir, MachineIDFileName)
	for _, path := range []string{SystemMachineIDFile, stored} {
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("machine ID: %w", err)
		}
		id := strings.TrimSpace(string(data))
		if id == "" {
			continue
		}
		if err := checkMachineID(id); err != nil {
			return "", fmt.Errorf("machine ID from %s: %w", path, err)
		}
		return id, nil
	}
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("machine ID: generate: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := writeFile(stored, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("machine ID: keep generated ID: %w", err)
	}
	return id, nil
}
