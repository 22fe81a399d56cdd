package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// ErrBodyTooLarge is what BodyStatus reports for a body over the limit.
var ErrBodyTooLarge = errors.New("request body too large")

var errTrailingData = errors.New("trailing data after the JSON value")

// bodyLimit rejects a declared oversize body at once and caps any other
// body, so a handler can never buffer more than max bytes.
func bodyLimit(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			// The client is still sending; tell it the connection will not
			// be reused rather than reading megabytes only to discard them.
			c.Header("Connection", "close")
			AbortError(c, http.StatusRequestEntityTooLarge, ErrBodyTooLarge.Error())
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		}
		c.Next()
	}
}

// BindJSON decodes the request body into v. On failure it has already
// answered with the right JSON error and aborted, so the handler just
// returns:
//
//	if err := httpserver.BindJSON(c, &req); err != nil { return }
//
// Statuses mirror the original's JSON extractor: 413 over the size limit,
// 415 for an explicit non-JSON Content-Type (a missing one is accepted),
// 400 for malformed JSON, 422 for well-formed JSON of the wrong shape.
func BindJSON(c *gin.Context, v any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" && !isJSONContentType(ct) {
		err := fmt.Errorf("unsupported content type %q", ct)
		AbortError(c, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return err
	}
	body, err := io.ReadAll(c.Request.Body)
	if err == nil && len(bytes.TrimSpace(body)) == 0 {
		err = io.EOF
	}
	if err == nil && !json.Valid(body) {
		// Decode again for a precise syntax error (offset, trailing data).
		dec := json.NewDecoder(bytes.NewReader(body))
		var raw json.RawMessage
		if err = dec.Decode(&raw); err == nil {
			err = errTrailingData
		}
	}
	if err == nil {
		if terr := CheckJSONText(body); terr != nil {
			AbortError(c, http.StatusBadRequest, terr.Error())
			return terr
		}
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		status, msg := BodyStatus(err)
		AbortError(c, status, msg)
		return err
	}
	return nil
}

// BodyStatus maps an error from reading or decoding a request body to a
// status and a client-safe message, for handlers that read bodies
// themselves.
func BodyStatus(err error) (int, string) {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge), errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, ErrBodyTooLarge.Error()
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "request body must be a JSON value"
	case errors.As(err, &syntax):
		return http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "invalid JSON: unexpected end of input"
	case errors.As(err, &typ):
		if typ.Field != "" {
			return http.StatusUnprocessableEntity, fmt.Sprintf("field %q must be %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return http.StatusUnprocessableEntity, fmt.Sprintf("body must be %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, errTrailingData):
		return http.StatusBadRequest, "invalid JSON: " + err.Error()
	}
	// Errors from custom UnmarshalJSON methods (enums, ids) are about
	// content, not syntax.
	return http.StatusUnprocessableEntity, err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return goKind
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
