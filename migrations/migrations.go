// Package migrations embeds Brokkr's golang-migrate SQL files so every binary
// carries the schema it expects and no file has to be shipped beside it.
package migrations

import "embed"

// FS holds the NNNN_name.{up,down}.sql files in lexical (= version) order.
//
//go:embed sql/*.sql
var FS embed.FS

// Dir is the directory inside FS that holds the migration files.
const Dir = "sql"
