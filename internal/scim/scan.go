package scim

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// scan is how a filtered list of users or groups is answered: the store is asked
// once per lookup (the indexed parts of the filter, or one lookup for everything),
// page by page; each item is rendered as its SCIM resource once and kept when the
// whole filter matches it. It returns one page of the matches in id order and
// their total. More than maxScan items read is a 400 telling how to narrow the
// filter, so no filter can make the server read the whole directory.
type scan[T, L any] struct {
	list   func(ctx context.Context, lookup L, cursor string) ([]T, string, error)
	id     func(T) string
	render func(context.Context, T) (map[string]any, error)
	what   string // "users"
	narrow string // which filters are indexed, for the tooMany message
}

func (s scan[T, L]) run(ctx context.Context, lookups []L, f Filter, start, count int) ([]T, int, error) {
	var matches []T
	seen := map[string]bool{}
	scanned := 0
	for _, lf := range lookups {
		cursor := ""
		for {
			items, next, err := s.list(ctx, lf, cursor)
			if err != nil {
				return nil, 0, err
			}
			for _, it := range items {
				if scanned++; scanned > maxScan {
					return nil, 0, &Error{Status: 400, ScimType: "tooMany", Detail: fmt.Sprintf(
						"the filter would read more than %d %s; narrow it with %s", maxScan, s.what, s.narrow)}
				}
				if seen[s.id(it)] {
					continue
				}
				seen[s.id(it)] = true
				res, err := s.render(ctx, it)
				if err != nil {
					return nil, 0, err
				}
				if Match(f, res) {
					matches = append(matches, it)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	slices.SortFunc(matches, func(a, b T) int { return strings.Compare(s.id(a), s.id(b)) })
	total := len(matches)
	from := min(start-1, total)
	to := min(from+count, total)
	return matches[from:to], total, nil
}
