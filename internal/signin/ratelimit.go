package signin

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets by key (a source IP, a username), in memory:
// each replica limits on its own, so N replicas allow up to N times the rate.
type limiter struct {
	perWindow int           // tokens per window, also the burst; 0: no limit
	window    time.Duration // refill period of perWindow tokens
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxBuckets bounds the memory one limiter holds; beyond it, full buckets (keys
// that have not been limited lately) are dropped first.
const maxBuckets = 100_000

func newLimiter(perWindow int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{perWindow: perWindow, window: window, now: now, buckets: map[string]*rate.Limiter{}}
}

func (l *limiter) bucket(key string) *rate.Limiter {
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune()
		}
		b = rate.NewLimiter(rate.Every(l.window/time.Duration(l.perWindow)), l.perWindow)
		b.SetLimitAt(l.now(), b.Limit()) // start the bucket on the limiter's clock
		l.buckets[key] = b
	}
	return b
}

// prune drops full buckets; if none is full, an arbitrary tenth of them.
func (l *limiter) prune() {
	now := l.now()
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.perWindow) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < maxBuckets {
		return
	}
	n := len(l.buckets) / 10
	for k := range l.buckets {
		if n == 0 {
			break
		}
		delete(l.buckets, k)
		n--
	}
}

// take spends one token for key; when none is left it spends nothing and says how
// long until one is.
func (l *limiter) take(key string) (ok bool, retryAfter time.Duration) {
	if l.perWindow <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.bucket(key)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b, now)
}

// check says whether key has a token left, without spending it.
func (l *limiter) check(key string) (ok bool, retryAfter time.Duration) {
	if l.perWindow <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, found := l.buckets[key]
	if !found || b.TokensAt(now) >= 1 {
		return true, 0
	}
	return false, l.wait(b, now)
}

func (l *limiter) wait(b *rate.Limiter, now time.Time) time.Duration {
	r := b.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}
