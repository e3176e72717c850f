package sdk

import (
	"slices"
	"sync"
	"time"
)

// cacheKey selects the tokens of one target: an audience, and for exchanged tokens
// the SHA-256 of the user's token (the token itself is never kept as a key).
type cacheKey struct {
	audience string
	subject  [32]byte
}

type cacheEntry struct {
	scopes    []string
	tok       Token
	refreshAt time.Time
}

// tokenCache holds tokens by target. A lookup takes a read lock, a map access and a
// comparison of scope lists: no allocation, so the hit path of AccessToken costs
// tens of nanoseconds. Scope lists are compared in order ("a b" and "b a" are
// separate entries, both correct).
type tokenCache struct {
	mu sync.RWMutex
	m  map[cacheKey][]*cacheEntry
	n  int
}

// maxCached bounds the entries; when full, expired ones go, and if none had
// expired, everything goes (the next calls fetch again).
const maxCached = 4096

func (tc *tokenCache) get(k cacheKey, scopes []string) *cacheEntry {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	for _, e := range tc.m[k] {
		if slices.Equal(e.scopes, scopes) {
			return e
		}
	}
	return nil
}

// put stores tok, replacing the entry for the same target. scopes must be owned by
// the cache (a copy). now is for the sweep when the cache is full.
func (tc *tokenCache) put(k cacheKey, scopes []string, tok Token, refreshAt, now time.Time) {
	e := &cacheEntry{scopes: scopes, tok: tok, refreshAt: refreshAt}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m == nil {
		tc.m = make(map[cacheKey][]*cacheEntry)
	}
	list := tc.m[k]
	for i, old := range list {
		if slices.Equal(old.scopes, scopes) {
			list = slices.Clone(list) // readers may hold the old slice
			list[i] = e
			tc.m[k] = list
			return
		}
	}
	if tc.n >= maxCached {
		tc.sweep(now)
	}
	tc.m[k] = append(slices.Clip(list), e)
	tc.n++
}

// sweep drops entries expired at now; if that frees nothing, it drops all.
func (tc *tokenCache) sweep(now time.Time) {
	for k, list := range tc.m {
		kept := list[:0:0]
		for _, e := range list {
			if now.Before(e.tok.ExpiresAt) {
				kept = append(kept, e)
			}
		}
		tc.n -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(tc.m, k)
		} else {
			tc.m[k] = kept
		}
	}
	if tc.n >= maxCached {
		clear(tc.m)
		tc.n = 0
	}
}

// drop removes the entry for the target; if accessToken is not empty, only while
// it still holds that token (a newer one stays).
func (tc *tokenCache) drop(k cacheKey, scopes []string, accessToken string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	list := tc.m[k]
	for i, e := range list {
		if slices.Equal(e.scopes, scopes) && (accessToken == "" || e.tok.AccessToken == accessToken) {
			list = slices.Delete(slices.Clone(list), i, i+1)
			if len(list) == 0 {
				delete(tc.m, k)
			} else {
				tc.m[k] = list
			}
			tc.n--
			return
		}
	}
}
