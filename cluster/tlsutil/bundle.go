package tlsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a bundle directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// DefaultValidity is how long bundle certificates last when
// BundleOptions.ValidFor is zero.
const DefaultValidity = 365 * 24 * time.Hour

// ErrExists is returned (wrapped, with the path) when WriteBundle would
// overwrite a file and BundleOptions.Force is not set.
var ErrExists = errors.New("tlsutil: file already exists (force overwriting, or reuse the CA)")

// NodeSpec names one node of a bundle. Its files are Name.crt and Name.key.
// Hosts are the certificate's subject alternative names; nil means
// DefaultHosts(Name).
type NodeSpec struct {
	Name  string
	Hosts []string
}

// BundleOptions tune WriteBundle. The zero value creates a fresh CA with
// DefaultValidity and refuses to overwrite anything.
type BundleOptions struct {
	ValidFor time.Duration // lifetime of the CA and node certificates
	CAName   string        // CA common name; "" means "DoubleDutch CA"
	Force    bool          // overwrite existing files, including the CA key
	ReuseCA  bool          // sign with the ca.crt and ca.key already in the folder
}

// DefaultHosts is what a node certificate covers when no hosts are given:
// the node's name and the loopback names, enough for a local cluster.
func DefaultHosts(name string) []string {
	return []string{name, "localhost", "127.0.0.1", "::1"}
}

// ParseNodes turns a comma-separated list of node names (the `--nodes`
// flag of `doubledutch certs`) into specs with default hosts.
func ParseNodes(list string) []NodeSpec {
	var nodes []NodeSpec
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			nodes = append(nodes, NodeSpec{Name: name})
		}
	}
	return nodes
}

// WriteBundle writes a CA (ca.crt, and ca.key with mode 0600) and, for each
// node, NAME.crt and NAME.key (0600) into dir, creating dir if needed.
//
// It never overwrites an existing file unless opts.Force is set: replacing
// the CA key silently would orphan every certificate already deployed. To
// add nodes to an existing cluster set opts.ReuseCA, which signs with the
// CA found in dir and leaves it untouched. All files are checked before any
// is written, so a refusal leaves dir as it was.
func WriteBundle(dir string, nodes []NodeSpec, opts BundleOptions) error {
	if err := checkNodes(nodes); err != nil {
		return err
	}
	validFor := opts.ValidFor
	if validFor == 0 {
		validFor = DefaultValidity
	}
	caName := opts.CAName
	if caName == "" {
		caName = "DoubleDutch CA"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}

	type file struct {
		path string
		data []byte
		perm fs.FileMode
	}
	var files []file
	caCertPath, caKeyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	var caCert, caKey []byte
	var err error
	if opts.ReuseCA {
		if caCert, err = os.ReadFile(caCertPath); err != nil {
			return fmt.Errorf("tlsutil: reuse CA: %w", err)
		}
		if caKey, err = os.ReadFile(caKeyPath); err != nil {
			return fmt.Errorf("tlsutil: reuse CA: %w", err)
		}
	} else {
		if caCert, caKey, err = GenerateCA(caName, validFor); err != nil {
			return err
		}
		files = append(files, file{caCertPath, caCert, 0o644}, file{caKeyPath, caKey, 0o600})
	}
	for _, n := range nodes {
		hosts := n.Hosts
		if hosts == nil {
			hosts = DefaultHosts(n.Name)
		}
		cert, key, err := GenerateNodeCert(caCert, caKey, n.Name, hosts, validFor)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		files = append(files,
			file{filepath.Join(dir, n.Name+".crt"), cert, 0o644},
			file{filepath.Join(dir, n.Name+".key"), key, 0o600})
	}

	if !opts.Force {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("%w: %s", ErrExists, f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("tlsutil: %w", err)
			}
		}
	}
	for _, f := range files {
		if err := writeFile(f.path, f.data, f.perm, opts.Force); err != nil {
			return err
		}
	}
	return nil
}

// checkNodes rejects names that would escape dir, collide with the CA files
// or with each other.
func checkNodes(nodes []NodeSpec) error {
	if len(nodes) == 0 {
		return errors.New("tlsutil: no nodes given")
	}
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		switch {
		case n.Name == "" || n.Name == "." || n.Name == "..":
			return fmt.Errorf("tlsutil: invalid node name %q", n.Name)
		case strings.ContainsAny(n.Name, `/\`) || n.Name != filepath.Base(n.Name):
			return fmt.Errorf("tlsutil: node name %q must not contain a path separator", n.Name)
		case n.Name == "ca":
			return errors.New(`tlsutil: node name "ca" collides with the CA files`)
		case seen[n.Name]:
			return fmt.Errorf("tlsutil: node %q listed twice", n.Name)
		}
		seen[n.Name] = true
	}
	return nil
}

// writeFile writes data with exactly perm. Without force it uses O_EXCL so
// that a file created since the existence check is still not clobbered.
// With force it writes a temporary file and renames it over the old one, so
// the old file's (possibly looser) permissions are not inherited and a crash
// never leaves a half-written key.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		if err != nil {
			return fmt.Errorf("tlsutil: %w", err)
		}
		return finish(f, data, perm)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	if err := finish(f, data, perm); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("tlsutil: %w", err)
	}
	return nil
}

// finish sets perm (the umask may have narrowed it, CreateTemp always uses
// 0600), writes data, syncs and closes f.
func finish(f *os.File, data []byte, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", f.Name(), err)
	}
	return nil
}
