package storetest

import (
	"os"
	"path/filepath"
	"testing"
)

// SQLiteFiles are the files in a data dir that hold what the SQLite store
// keeps: the database, its WAL and the audit journal (events answered but not
// yet in the database).
var SQLiteFiles = []string{"agentguard.db", "agentguard.db-wal", "agentguard.db-audit"}

// SQLiteBytes returns the contents of SQLiteFiles in dir (the ones that
// exist), for tests that search everything stored for a secret.
func SQLiteBytes(t testing.TB, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range SQLiteFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
