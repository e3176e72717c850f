package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// SQLite in WAL mode appends every commit to the WAL file and copies pages back
// into the database file at a checkpoint. By default the committing connection
// runs that checkpoint itself every 1,000 pages, fsync included, while it holds
// the write lock: every writer (and every request waiting for its audit event)
// then stalls behind it. The store's write connection therefore never
// checkpoints (wal_autocheckpoint 0); checkpointLoop does it from a connection of
// its own in PASSIVE mode, which copies what it can without taking the write
// lock, so writers never wait for it.

const (
	// checkpointEvery is how often the background checkpoint runs. While one
	// copies pages and fsyncs, some requests stall, for a time that grows with
	// the pages written since the last: measured under full load, the slowest
	// request took ~40 ms every 100 ms, ~110 ms every 500 ms, ~150 ms every 2 s.
	checkpointEvery = 100 * time.Millisecond
	// walRestartPages: if the WAL still holds this many pages after a passive
	// checkpoint (readers kept it from resetting), a RESTART checkpoint waits
	// for them, briefly blocking writers, so the file cannot grow without bound.
	walRestartPages = 64 << 10 // 256 MiB of 4 KiB pages
)

// checkpointLoop runs until stop is closed, then checkpoints once more so a
// closed store leaves a short WAL. done is closed when it returns.
func checkpointLoop(db *sql.DB, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			checkpoint(db, "TRUNCATE")
			return
		case <-t.C:
			if walPages := checkpoint(db, "PASSIVE"); walPages >= walRestartPages {
				checkpoint(db, "RESTART")
			}
		}
	}
}

// checkpoint runs one checkpoint in mode and returns the WAL's size in pages.
func checkpoint(db *sql.DB, mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, walPages, copied int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &walPages, &copied); err != nil {
		slog.Warn("SQLite checkpoint failed; the WAL file keeps growing until one succeeds", "mode", mode, "err", err)
		return 0
	}
	return walPages
}
