// Package httpapi is the api service's driving adapter: gin handlers that
// decode requests, call the use cases and encode the original's JSON shapes.
// Errors reach the wire through the one error table in
// pkg/platform/httpserver (httpserver.Fail).
package httpapi
