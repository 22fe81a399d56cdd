package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// readJSON reads the body of a JSON request, answering 415/413/400 itself.
// It returns nil, false when it has already answered.
func readJSON(c *gin.Context) ([]byte, bool) {
	ct := c.GetHeader("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		httpserver.AbortError(c, http.StatusUnsupportedMediaType, "Expected request with `Content-Type: application/json`")
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpserver.AbortError(c, http.StatusRequestEntityTooLarge, "request body too large")
			return nil, false
		}
		httpserver.Fail(c, domain.Invalid("could not read request body"))
		return nil, false
	}
	if !json.Valid(body) {
		httpserver.Fail(c, domain.Invalid("Failed to parse the request body as JSON"))
		return nil, false
	}
	// NUL and invalid UTF-8 cannot be stored: refuse them here, for every
	// route at once, rather than as a database error deep inside.
	if err := httpserver.CheckJSONText(body); err != nil {
		httpserver.Fail(c, domain.Invalid("Failed to parse the request body as JSON: "+err.Error()))
		return nil, false
	}
	return body, true
}

// bindJSON decodes a JSON object body into v: 400 for malformed JSON, 422 for
// well-formed JSON of the wrong shape.
func bindJSON(c *gin.Context, v any) bool {
	body, ok := readJSON(c)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: "+err.Error()))
		return false
	}
	return true
}

// pathID parses a UUID path parameter, answering 400 when it is not one.
func pathID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		httpserver.Fail(c, domain.Invalid("Invalid URL: "+name+" must be a UUID"))
		return uuid.Nil, false
	}
	return id, true
}

// optional is a JSON field that distinguishes absent, null and a value, so
// PUT can leave a field unchanged (absent) or clear it (null)
// (docs/compatibility.md#partial-put).
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// ptr returns the value when it was sent and not null.
func (o optional[T]) ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}

// stringOrObject decodes a body that may be a bare JSON string or an object
// carrying the string under key (docs/compatibility.md#label-bodies). The object's
// other fields are decoded into extra when non-nil.
func stringOrObject(c *gin.Context, key string, extra any) (string, bool) {
	body, ok := readJSON(c)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(body, &s); err == nil {
		return s, true
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		httpserver.Fail(c, domain.Unprocessable("expected a JSON string or an object with \""+key+"\""))
		return "", false
	}
	raw, found := obj[key]
	if !found || json.Unmarshal(raw, &s) != nil {
		httpserver.Fail(c, domain.Unprocessable("missing or invalid field \""+key+"\""))
		return "", false
	}
	if extra != nil {
		if err := json.Unmarshal(body, extra); err != nil {
			httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: "+err.Error()))
			return "", false
		}
	}
	return s, true
}
