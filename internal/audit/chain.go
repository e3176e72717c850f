package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// chainVersion starts every hashed encoding, so a future change of the encoding
// cannot be confused with this one.
const chainVersion = "agentguard-audit-v1"

// HashEvent returns the hex SHA-256 of e's canonical encoding: the version tag, then
// every field in a fixed order (seq, id, time in Unix microseconds, category,
// action, decision, reason, agent_id, user, client_id, resource_type, resource,
// source_ip, request_id, trace_id, prev_hash), each prefixed by its 8-byte
// big-endian length. Length prefixes make the encoding unambiguous: no two
// different events encode alike, whatever bytes their fields hold.
func HashEvent(e Event) string {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(chainVersion)
	put(strconv.FormatInt(e.Seq, 10))
	put(e.ID)
	put(strconv.FormatInt(e.Time.UnixMicro(), 10))
	for _, f := range []string{e.Category, e.Action, e.Decision, e.Reason, e.AgentID, e.User, e.ClientID,
		e.ResourceType, e.Resource, e.SourceIP, e.RequestID, e.TraceID, e.PrevHash} {
		put(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Chain links events after the chain head (seq, hash): it assigns consecutive seq
// numbers, sets each PrevHash and computes each Hash. It returns the new head.
func Chain(events []Event, seq int64, hash string) (int64, string) {
	for i := range events {
		seq++
		events[i].Seq, events[i].PrevHash = seq, hash
		events[i].Time = events[i].Time.UTC().Truncate(time.Microsecond)
		hash = HashEvent(events[i])
		events[i].Hash = hash
	}
	return seq, hash
}

// Checkpoint stands for the deleted prefix of the chain: the seq and hash of the
// last deleted event, signed so that deleting events and forging a checkpoint
// needs the KMS-sealed key, not only write access to the database.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	Signature string    `json:"signature"`
}

// SignCheckpoint returns the hex HMAC-SHA256 of the checkpoint's fields under key.
func SignCheckpoint(key []byte, c Checkpoint) string {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	for _, s := range []string{"agentguard-audit-checkpoint-v1", strconv.FormatInt(c.Seq, 10), c.Hash,
		strconv.FormatInt(c.CreatedAt.UnixMicro(), 10)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature compares in constant time.
func checkSignature(key []byte, c Checkpoint) bool {
	want, err := hex.DecodeString(SignCheckpoint(key, c))
	if err != nil {
		return false
	}
	got, err := hex.DecodeString(c.Signature)
	return err == nil && hmac.Equal(want, got)
}

// ClampTimes makes the events' times non-decreasing, starting after lastMicro (the
// newest time already in the log, Unix microseconds): an event stamped earlier is
// given the previous time. Appenders call it under the chain head lock, before
// Chain, so time order equals seq order and a time range is a seq range. Events
// of one batch were stamped microseconds apart; across PostgreSQL writers the
// shift is at most their clock skew. It returns the new newest time.
func ClampTimes(events []Event, lastMicro int64) int64 {
	for i := range events {
		if t := events[i].Time.UnixMicro(); t < lastMicro {
			events[i].Time = time.UnixMicro(lastMicro).UTC()
		} else {
			lastMicro = t
		}
	}
	return lastMicro
}
