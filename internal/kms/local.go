package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentguard/agentguard/internal/secret"
)

// LocalKeyFile is the keyring's file name inside the data directory.
const LocalKeyFile = "kms-keyring.json"

// Local wraps data keys with AES-256-GCM under keys kept in a 0600 file. The file is
// a keyring: rotation adds a key and makes it current, and older keys stay so values
// not yet re-wrapped still open. Another process's rotation is picked up on the first
// unknown key id, so `agentguard kms rotate` needs no restart.
type Local struct {
	path string

	mu      sync.RWMutex
	current string
	keys    map[string][]byte
}

type keyringFile struct {
	Current string            `json:"current"`
	Keys    map[string]string `json:"keys"` // id -> base64 key
	Created map[string]string `json:"created,omitempty"`
}

// OpenLocal loads the keyring at path, creating it with one fresh key if absent.
func OpenLocal(path string) (*Local, error) {
	l := &Local{path: path}
	if err := l.load(); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("kms: create data dir: %w", err)
		}
		l.keys = map[string][]byte{}
		if _, err := l.addKey(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Local) load() error {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return err
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("kms: keyring %s is not valid JSON: %w", l.path, err)
	}
	keys := make(map[string][]byte, len(f.Keys))
	for id, k := range f.Keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			return fmt.Errorf("kms: keyring %s: key %q is not 32 base64 bytes", l.path, id)
		}
		keys[id] = raw
	}
	if _, ok := keys[f.Current]; !ok {
		return fmt.Errorf("kms: keyring %s: current key %q is missing", l.path, f.Current)
	}
	l.mu.Lock()
	l.current, l.keys = f.Current, keys
	l.mu.Unlock()
	return nil
}

// Rotate adds a new key to the keyring and makes it current. It returns the new id.
func (l *Local) Rotate() (string, error) {
	if err := l.load(); err != nil {
		return "", err
	}
	return l.addKey()
}

func (l *Local) addKey() (string, error) {
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
	f.Keys[id] = base64.StdEncoding.EncodeToString(k)
	f.Created[id] = time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return "", fmt.Errorf("kms: write keyring: %w", err)
	}
	l.keys[id] = k
	l.current = id
	return id, nil
}

func (l *Local) CurrentKeyID() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.current
}

func (l *Local) Wrap(_ context.Context, dek, aad []byte) (string, []byte, error) {
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
	// Another process may have rotated: reread the file once.
	if err := l.load(); err != nil {
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
