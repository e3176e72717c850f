package scim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// fakeScan pages through ids the way the stores do (cursor = index of the
// next item), so scan's paging, de-duplication and limit run as in production.
func fakeScan(pages map[string][]string, pageSize int) scan[string, string] {
	return scan[string, string]{
		list: func(_ context.Context, lookup, cursor string) ([]string, string, error) {
			items := pages[lookup]
			from := 0
			fmt.Sscan(cursor, &from)
			to := min(from+pageSize, len(items))
			next := ""
			if to < len(items) {
				next = fmt.Sprint(to)
			}
			return items[from:to], next, nil
		},
		id: func(s string) string { return s },
		render: func(_ context.Context, s string) (map[string]any, error) {
			return map[string]any{"userName": s}, nil
		},
		what: "users", narrow: "userName eq",
	}
}

func TestScanMatchesDeduplicatesSortsAndPages(t *testing.T) {
	// Two lookups (an "or" of two indexed equalities) that overlap in "b".
	s := fakeScan(map[string][]string{"x": {"d", "b", "a"}, "y": {"b", "c", "e"}}, 2)
	f, err := ParseFilter(`userName ne "e"`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		start, count int
		want         []string
	}{
		{1, 10, []string{"a", "b", "c", "d"}},
		{2, 2, []string{"b", "c"}},
		{4, 10, []string{"d"}},
		{9, 10, []string{}},
	}
	for _, tt := range tests {
		got, total, err := s.run(context.Background(), []string{"x", "y"}, f, tt.start, tt.count)
		if err != nil || total != 4 || !slices.Equal(got, tt.want) {
			t.Errorf("start %d count %d: %v total %d, %v; want %v total 4", tt.start, tt.count, got, total, err, tt.want)
		}
	}
}

// A filter no index serves must not read the whole directory.
func TestScanRefusesToReadMoreThanMaxScan(t *testing.T) {
	many := make([]string, maxScan+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%06d", i)
	}
	f, _ := ParseFilter(`userName eq "nobody"`)
	_, _, err := fakeScan(map[string][]string{"": many}, 500).run(context.Background(), []string{""}, f, 1, 10)
	var se *Error
	if !errors.As(err, &se) || se.Status != 400 || se.ScimType != "tooMany" {
		t.Fatalf("err %v, want a 400 tooMany", err)
	}
	many = many[:maxScan]
	if _, _, err := fakeScan(map[string][]string{"": many}, 500).run(context.Background(), []string{""}, f, 1, 10); err != nil {
		t.Fatalf("exactly maxScan items: %v", err)
	}
}
