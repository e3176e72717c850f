// Package store holds what every storage implementation and every domain package
// agree on: the sentinel errors and the list page. The SQL implementation is in
// sqlstore; each domain package defines the interface it needs.
package store

import "errors"

var (
	// ErrNotFound: no row has that key.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key (identifier, audience, name) is taken.
	ErrConflict = errors.New("conflict")
)

// Page asks for one page of a list: at most Limit rows after Cursor.
type Page struct {
	Limit  int
	Cursor string
}

// MaxLimit and DefaultLimit bound every list (contract: default 50, max 500).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)
