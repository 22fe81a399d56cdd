package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

const principalKey = "brokkr.principal"

// authenticate resolves the PAK in the Authorization header (bare or
// Bearer) to a principal; anything else is a JSON 401
// (docs/compatibility.md#authorization-header).
func authenticate(a authn.Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		client := journal.Client{IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
		header := c.GetHeader("Authorization")
		if header == "" {
			httpserver.Fail(c, domain.Unauthenticated("Unauthorized"))
			return
		}
		p, err := a.Authenticate(c.Request.Context(), header, authn.Client{IP: client.IP, UserAgent: client.UserAgent})
		if err != nil {
			httpserver.Fail(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Request = c.Request.WithContext(journal.WithClient(c.Request.Context(), client))
		c.Next()
	}
}

// principal returns the caller authenticated by the middleware.
func principal(c *gin.Context) identity.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(identity.Principal)
	return pr
}
