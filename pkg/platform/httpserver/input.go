package httpserver

import (
	"errors"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Text that PostgreSQL cannot store (text and jsonb reject NUL, and every
// column is UTF-8) is refused at the edge with 400, for bodies, paths and
// query strings alike, so that no handler can turn it into a 500.
var (
	ErrInvalidUTF8 = errors.New("text must be valid UTF-8")
	ErrNUL         = errors.New(`text must not contain NUL (\u0000)`)
	errControl     = errors.New("URL must not contain control characters")
)

// CheckJSONText checks a syntactically valid JSON document for what JSON
// allows but Brokkr cannot store: bytes that are not UTF-8 and the escape
// \u0000 in any string, key or value. Every JSON body passes through it
// (BindJSON here, and api's binding), so no route needs its own check.
func CheckJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return ErrInvalidUTF8
	}
	inString := false
	for i := 0; i < len(body); i++ {
		b := body[i]
		if !inString {
			if b == '"' {
				inString = true
			}
			continue
		}
		switch b {
		case '"':
			inString = false
		case '\\':
			if i+5 < len(body) && body[i+1] == 'u' && string(body[i+2:i+6]) == "0000" {
				return ErrNUL
			}
			i++ // the escaped character cannot end the string
		}
	}
	return nil
}

// checkText is for decoded path segments and query values.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return ErrNUL
		}
		if s[i] < 0x20 || s[i] == 0x7f {
			return errControl
		}
	}
	return nil
}

// sanitizeURL answers 400 for a path or query string that decodes to
// invalid UTF-8, NUL or other control characters (`/agents/%ff%fe`,
// `/labels/%00`), before routing, auth or any handler sees it.
func sanitizeURL() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := checkText(c.Request.URL.Path); err != nil {
			AbortError(c, http.StatusBadRequest, "invalid URL path: "+err.Error())
			return
		}
		if raw := c.Request.URL.RawQuery; raw != "" {
			q, err := url.ParseQuery(raw)
			if err != nil {
				AbortError(c, http.StatusBadRequest, "invalid query string")
				return
			}
			for k, vs := range q {
				if err := checkText(k); err != nil {
					AbortError(c, http.StatusBadRequest, "invalid query string: "+err.Error())
					return
				}
				for _, v := range vs {
					if err := checkText(v); err != nil {
						AbortError(c, http.StatusBadRequest, "invalid query parameter "+k+": "+err.Error())
						return
					}
				}
			}
		}
		c.Next()
	}
}
