package api

import (
	"net/http"
	"strconv"

	"github.com/agentguard/agentguard/internal/store"
)

// List is the contract's list envelope.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// NewList never renders items as null.
func NewList[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: next}
}

// PageParams reads limit (1..500, default 50) and cursor from the query.
func PageParams(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	cursor = q.Get("cursor")
	if len(cursor) > 256 {
		return 0, "", Invalid(FieldError{Field: "cursor", Detail: "is not a cursor this server returned"})
	}
	limit = store.DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxLimit {
			return 0, "", Invalid(FieldError{Field: "limit", Detail: "must be a whole number from 1 to 500"})
		}
		limit = n
	}
	return limit, cursor, nil
}
