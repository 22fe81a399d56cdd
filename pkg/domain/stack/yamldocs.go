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
	// Value is the decoded mapping, never nil: empty documents (nothing, ~,
	// or an alias of a null) are skipped.
	Value map[string]any
}

// MaxDocuments bounds how many documents one deployment object may hold;
// exactly MaxDocuments are accepted.
const MaxDocuments = 10000

// Alias bounds for one deployment object. An alias is cheap to write and
// expensive to expand (100,000 aliases of one scalar cost seconds of CPU),
// and Kubernetes manifests hardly use them: MaxAliases alias nodes in all,
// and at most MaxAliasExpansion nodes reached through aliases (each alias
// counts the size of what it points to).
const (
	MaxAliases        = 1000
	MaxAliasExpansion = 100000
)

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
	var aliases aliasBudget
	for i := 1; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if i > MaxDocuments {
			return nil, fmt.Errorf("too many YAML documents (max %d)", MaxDocuments)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if err := aliases.spend(&node); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(node.Content) == 0 || (node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null") {
			continue
		}
		var v map[string]any
		if err := node.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: not a mapping: %w", i, err)
		}
		if v == nil {
			// Null by another road than the check above, e.g. an alias of an
			// earlier document's null ("&a\n---\n*a"): empty, like "---\n~".
			continue
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

// aliasBudget counts alias nodes, and the nodes they expand to, across the
// documents of one object.
type aliasBudget struct {
	aliases, expansion int
}

func (b *aliasBudget) spend(n *yaml.Node) error {
	sizes := map[*yaml.Node]int{}
	var walk func(n *yaml.Node, depth int) error
	walk = func(n *yaml.Node, depth int) error {
		if n == nil || depth > 10000 {
			return nil
		}
		if n.Kind == yaml.AliasNode {
			b.aliases++
			b.expansion += treeSize(n.Alias, sizes, 0)
			switch {
			case b.aliases > MaxAliases:
				return fmt.Errorf("too many YAML aliases (max %d)", MaxAliases)
			case b.expansion > MaxAliasExpansion:
				return fmt.Errorf("YAML aliases expand to too many nodes (max %d)", MaxAliasExpansion)
			}
			return nil
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n, 0)
}

// treeSize is the number of nodes n expands to, aliases followed (memoised;
// the parser refuses aliases to an anchor still being defined, so there are
// no cycles, and the depth bound is a second guard).
func treeSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil || depth > 10000 {
		return 0
	}
	if s, ok := memo[n]; ok {
		return s
	}
	size := 1
	if n.Kind == yaml.AliasNode {
		size = treeSize(n.Alias, memo, depth+1)
	}
	for _, c := range n.Content {
		size += treeSize(c, memo, depth+1)
		if size > MaxAliasExpansion {
			break
		}
	}
	memo[n] = size
	return size
}
