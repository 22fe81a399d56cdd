// Package apiclient is the broker's REST client, generated from
// api-spec/openapi.yaml by oapi-codegen (`make generate`), plus the few
// hand-written helpers the generator does not provide.
package apiclient

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../api-spec/openapi.yaml
