package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/agentguard/agentguard/internal/secret"
)

// LocalKeyFile is the keyring's file name inside the data directory.
const LocalKeyFile = "kms-keyring.json"

// Local wraps data keys with AES-256-GCM under keys kept in a 0600 file. The file is
// a keyring: rotation adds a key and makes it current, and older keys stay so values
// not yet re-wrapped still open. Another process's rotation is picked up on the first
// unknown key id (Unwrap) and whenever the file has changed (Wrap), so `agentguard
// kms rotate` needs no restart and running servers seal new values under the new key.
type Local struct {
	path string

	mu      sync.RWMutex
	current string
	keys    map[string][]byte
	created map[string]string
	loaded  os.FileInfo // the file version last loaded or written
}

// sameVersion reports whether a and b are one version of the keyring file: rotation
// replaces the file by rename, so a new version is another file (inode) with
// another modification time and size.
func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

type keyringFile struct {
	Current string            `json:"current"`
	Keys    map[string]string `json:"keys"` // id -> base64 key
	Created map[string]string `json:"created,omitempty"`
}

// errKeyringExists: another process created the keyring first.
var errKeyringExists = errors.New("kms: keyring already exists")

// OpenLocal loads the keyring at path, creating it with one fresh key if absent.
func OpenLocal(path string) (*Local, error) {
	l := &Local{path: path}
	err := l.load()
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("kms: create data dir: %w", err)
		}
		l.keys, l.created = map[string][]byte{}, map[string]string{}
		// Two processes starting on an empty data dir must not each write a key
		// and overwrite the other's: the first file wins, the loser loads it.
		if _, err = l.addKey(true); errors.Is(err, errKeyringExists) {
			err = l.load()
		}
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Local) load() error {
	f, err := os.Open(l.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("kms: keyring %s: %w", l.path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return fmt.Errorf("kms: read keyring %s: %w", l.path, err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return fmt.Errorf("kms: keyring %s is not a valid keyring file (JSON with \"current\" and \"keys\"): %w", l.path, err)
	}
	keys := make(map[string][]byte, len(kf.Keys))
	for id, k := range kf.Keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			return fmt.Errorf("kms: keyring %s: key %q is not 32 base64 bytes", l.path, id)
		}
		if id == "" || len(id) > 255 {
			return fmt.Errorf("kms: keyring %s: key id %q must be 1 to 255 bytes", l.path, id)
		}
		keys[id] = raw
	}
	if _, ok := keys[kf.Current]; !ok {
		return fmt.Errorf("kms: keyring %s: current key %q is missing", l.path, kf.Current)
	}
	if kf.Created == nil {
		kf.Created = map[string]string{}
	}
	l.mu.Lock()
	l.current, l.keys, l.created, l.loaded = kf.Current, keys, kf.Created, fi
	l.mu.Unlock()
	return nil
}

// refresh reloads the keyring if the file changed since it was last read.
func (l *Local) refresh() error {
	fi, err := os.Stat(l.path)
	if err != nil {
		// The keys in memory still work; Ping reports the missing file.
		return nil
	}
	l.mu.RLock()
	same := sameVersion(fi, l.loaded)
	l.mu.RUnlock()
	if same {
		return nil
	}
	return l.load()
}

// Rotate adds a new key to the keyring and makes it current. It returns the new id.
// Rotations are expected one at a time (an operator command): two running at the
// same instant could each write a keyring without the other's new key.
func (l *Local) Rotate() (string, error) {
	if err := l.load(); err != nil {
		return "", err
	}
	return l.addKey(false)
}

// addKey writes the keyring with one more key, made current. With create set it
// fails with errKeyringExists instead of replacing an existing file.
func (l *Local) addKey(create bool) (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	id := secret.NewID("kek")
	l.mu.Lock()
	defer l.mu.Unlock()
	f := keyringFile{Current: id, Keys: map[string]string{}, Created: map[string]string{}}
	for kid, key := range l.keys {
		f.Keys[kid] = base64.StdEncoding.EncodeToString(key)
	}
	for kid, at := range l.created {
		if _, ok := l.keys[kid]; ok {
			f.Created[kid] = at
		}
	}
	f.Keys[id] = base64.StdEncoding.EncodeToString(k)
	f.Created[id] = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	// A temporary file of our own (CreateTemp makes it 0600), then an atomic
	// rename (or, when creating, a link that fails if the file appeared).
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".kms-keyring-*.tmp")
	if err != nil {
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	if create {
		if err := os.Link(tmp.Name(), l.path); errors.Is(err, os.ErrExist) {
			return "", errKeyringExists
		} else if err != nil {
			return "", fmt.Errorf("kms: write keyring: %w", err)
		}
	} else if err := os.Rename(tmp.Name(), l.path); err != nil {
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	if l.keys == nil {
		l.keys = map[string][]byte{}
	}
	if l.created == nil {
		l.created = map[string]string{}
	}
	l.keys[id] = k
	l.created[id] = f.Created[id]
	l.current = id
	if fi, err := os.Stat(l.path); err == nil {
		l.loaded = fi
	}
	return id, nil
}

// KeyIDs lists the keyring's key ids, oldest first (ids sort by creation time).
func (l *Local) KeyIDs() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ids := make([]string, 0, len(l.keys))
	for id := range l.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (l *Local) CurrentKeyID() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.current
}

func (l *Local) Wrap(_ context.Context, dek, aad []byte) (string, []byte, error) {
	// Seal under the newest key even if another process rotated since we loaded.
	if err := l.refresh(); err != nil {
		return "", nil, err
	}
	l.mu.RLock()
	id, key := l.current, l.keys[l.current]
	l.mu.RUnlock()
	gcm, err := newGCM(key)
	if err != nil {
		return "", nil, err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(dek)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, err
	}
	return id, gcm.Seal(nonce, nonce, dek, aad), nil
}

func (l *Local) Unwrap(_ context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	key, err := l.key(keyID)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < gcm.NonceSize() {
		return nil, ErrOpen
	}
	return gcm.Open(nil, wrapped[:gcm.NonceSize()], wrapped[gcm.NonceSize():], aad)
}

func (l *Local) key(id string) ([]byte, error) {
	l.mu.RLock()
	k, ok := l.keys[id]
	l.mu.RUnlock()
	if ok {
		return k, nil
	}
	// Another process may have rotated: reread the file if it changed.
	if err := l.refresh(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if k, ok := l.keys[id]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("kms: key %q is not in the keyring %s", id, l.path)
}

func (l *Local) Ping(context.Context) error {
	_, err := os.Stat(l.path)
	return err
}
