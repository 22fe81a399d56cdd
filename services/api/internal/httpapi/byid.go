package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// byID is the handler answering 200 with what load returns for the path's
// {id} (a bad id is a 400 from pathID). load may also act (pause a rollout,
// enable a schedule): the answer is then the state it leaves. A route whose
// handler only passes {id} to one use case names that use case in the route
// table through byID, actOnID or actOnIDAnd.
func byID[T any](load func(context.Context, identity.Principal, uuid.UUID) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		v, err := load(c.Request.Context(), principal(c), id)
		respond(c, http.StatusOK, v, err)
	}
}

// byPrincipal is the handler answering 200 with what load returns for the
// caller (the lists, filtered to what the caller may see).
func byPrincipal[T any](load func(context.Context, identity.Principal) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := load(c.Request.Context(), principal(c))
		respond(c, http.StatusOK, v, err)
	}
}

// actOnID is the handler answering 204 once act succeeds for the path's {id}.
func actOnID(act func(context.Context, identity.Principal, uuid.UUID) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		noContent(c, act(c.Request.Context(), principal(c), id))
	}
}

// actOnIDAnd is the handler answering 204 once act succeeds for the path's
// {id} and its second parameter, named param ({label}, {key}).
func actOnIDAnd(param string, act func(context.Context, identity.Principal, uuid.UUID, string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		noContent(c, act(c.Request.Context(), principal(c), id, c.Param(param)))
	}
}

// pathIDPair reads the path's {id} and a second id parameter, named
// second ({stack_id}, {delivery_id}); either one malformed is pathID's 400.
func pathIDPair(c *gin.Context, second string) (id, other uuid.UUID, ok bool) {
	if id, ok = pathID(c, "id"); !ok {
		return id, other, false
	}
	other, ok = pathID(c, second)
	return id, other, ok
}

// pathIDAndJSON reads the path's {id}, then binds the JSON body into v:
// a malformed id is pathID's 400 before the body is read, a bad body
// bindJSON's. ok is false when either answered.
func pathIDAndJSON(c *gin.Context, v any) (id uuid.UUID, ok bool) {
	if id, ok = pathID(c, "id"); !ok {
		return id, false
	}
	return id, bindJSON(c, v)
}
