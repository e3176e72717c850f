package secret

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// IDs must sort by creation time (list cursors rely on "id > cursor" following
// insertion order) and never repeat.
func TestNewIDSortableAndUnique(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		id := NewID("ag")
		if seen[id] {
			t.Fatalf("NewID repeated %q after %d ids", id, i)
		}
		seen[id] = true
		ids = append(ids, id)
		if !strings.HasPrefix(id, "ag_") || len(id) != len("ag_")+26 {
			t.Fatalf("NewID = %q, want ag_ and 26 characters", id)
		}
		if strings.ContainsAny(id[3:], "ilouILOU") {
			t.Fatalf("NewID = %q uses a letter outside the Crockford alphabet", id)
		}
	}
	// Ids made one after another sort in that order, within a millisecond too
	// (keyring key ids, list cursors and audit ids rely on it), and the decoded
	// 48-bit time never goes back.
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] || idMillis(t, ids[i]) < idMillis(t, ids[i-1]) {
			t.Fatalf("ids out of creation order: %q then %q", ids[i-1], ids[i])
		}
	}
	if ms := idMillis(t, ids[0]); ms > time.Now().UnixMilli() || ms < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("NewID timestamp %d is not the current time", ms)
	}
	// An ID made in a later millisecond sorts after every earlier one.
	a := NewID("ag")
	b := NewID("ag")
	for idMillis(t, b) == idMillis(t, a) {
		b = NewID("ag")
	}
	if !(a < b) {
		t.Fatalf("NewID %q made before %q sorts after it", a, b)
	}
}

func idMillis(t *testing.T, id string) int64 {
	t.Helper()
	_, body, _ := strings.Cut(id, "_")
	b, err := idEncoding.DecodeString(body)
	if err != nil || len(b) != 16 {
		t.Fatalf("id %q does not decode to 16 bytes: %v", id, err)
	}
	return int64(binary.BigEndian.Uint64(b[:8]) >> 16)
}

// New must carry 256 bits of randomness after its prefix.
func TestNewHas256BitsAndPrefix(t *testing.T) {
	s := New("ags")
	if !HasPrefix(s, "ags") {
		t.Fatalf("New(ags) = %q, want prefix ags_", s[:4])
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, "ags_"))
	if err != nil {
		t.Fatalf("New: body is not base64url: %v", err)
	}
	if len(raw) != 32 {
		t.Fatalf("New: %d random bytes, want 32", len(raw))
	}
	if New("ags") == s {
		t.Fatal("New returned the same secret twice")
	}
	if HasPrefix(s, "ag") {
		t.Fatal("HasPrefix(ags_…, ag) = true; the prefix must end at the underscore")
	}
}

func TestMatchesAndEqual(t *testing.T) {
	s := New("ags")
	stored := Hash(s)
	if stored == s || strings.Contains(stored, strings.TrimPrefix(s, "ags_")) {
		t.Fatal("Hash leaks the secret")
	}
	if Hash(s) != stored {
		t.Fatal("Hash is not deterministic")
	}
	tests := []struct {
		name   string
		secret string
		stored string
		want   bool
	}{
		{"same secret", s, stored, true},
		{"other secret", New("ags"), stored, false},
		{"secret with a byte changed", s[:len(s)-1] + string(s[len(s)-1]^1), stored, false},
		{"empty secret", "", stored, false},
		{"stored value compared as the secret", stored, stored, false},
		{"empty stored hash", s, "", false},
		{"truncated stored hash", s, stored[:len(stored)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(tt.secret, tt.stored); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
	eq := []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "abcd", false},
		{"", "", true},
	}
	for _, tt := range eq {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// The step added within a millisecond carries across bytes and reports an
// overflow of the 80 bits (then the id borrows the next millisecond).
func TestAddStepCarries(t *testing.T) {
	tests := []struct {
		name      string
		r         [10]byte
		step      uint64
		want      [10]byte
		overflows bool
	}{
		{"low byte", [10]byte{9: 1}, 2, [10]byte{9: 3}, false},
		{"carry into the next byte", [10]byte{9: 0xff}, 1, [10]byte{8: 1, 9: 0}, false},
		{"a 32-bit step", [10]byte{}, 1<<32 + 1, [10]byte{5: 1, 9: 1}, false},
		{"carry through every byte", [10]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1, [10]byte{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			if got := addStep(&r, tt.step); got != tt.overflows || r != tt.want {
				t.Fatalf("addStep = %x, overflow %v; want %x, %v", r, got, tt.want, tt.overflows)
			}
		})
	}
}
