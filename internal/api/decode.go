package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody bounds every JSON request body on the API.
const MaxBody = 1 << 20

// Decode reads a JSON object into v: Content-Type must be JSON (415), the body at
// most MaxBody (413), no unknown fields and no trailing data (400 naming the field).
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return Problem(http.StatusUnsupportedMediaType, "send the body as application/json (got Content-Type %q)", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return Problem(http.StatusBadRequest, "the body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return decodeError(err)
		}
		return Problem(http.StatusBadRequest, "the body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return Problem(http.StatusRequestEntityTooLarge, "the body is over the %d-byte limit", MaxBody)
	case errors.Is(err, io.EOF):
		return Problem(http.StatusBadRequest, "the body is empty; send a JSON object")
	case errors.As(err, &syntax):
		return Problem(http.StatusBadRequest, "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return Invalid(FieldError{Field: typ.Field, Detail: fmt.Sprintf("must be a %s, not a JSON %s", typ.Type, typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(FieldError{Field: field, Detail: "is not a known field"})
	}
	return Problem(http.StatusBadRequest, "the body is not a valid JSON object: %v", err)
}
