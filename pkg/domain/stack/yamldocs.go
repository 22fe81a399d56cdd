package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Document is one YAML document of a deployment object.
type Document struct {
	// Index is the 1-based position among all documents, empty ones included,
	// so error messages point at what the user wrote.
	Index int
	// Source is the document's text.
	Source string
	// Value is the decoded document; nil for an empty document.
	Value map[string]any
}

// MaxDocuments bounds how many documents one deployment object may hold.
const MaxDocuments = 10000

// SplitYAML decodes multi-document YAML. Empty documents are skipped; a
// document that is not a mapping, or does not parse, is an error naming its
// position. It never panics on user input.
func SplitYAML(src string) (docs []Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("invalid YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(strings.NewReader(src))
	for i := 1; ; i++ {
		if i > MaxDocuments {
			return nil, fmt.Errorf("too many YAML documents (max %d)", MaxDocuments)
		}
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(node.Content) == 0 || (node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null") {
			continue
		}
		var v map[string]any
		if err := node.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: not a mapping: %w", i, err)
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&node); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		docs = append(docs, Document{Index: i, Source: buf.String(), Value: v})
	}
}
