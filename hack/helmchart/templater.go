package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// templater turns an object into a Helm template. Fields are replaced by placeholders that YAML
// leaves alone, the object is written as YAML (keys sorted, as kustomize writes them), and the
// placeholders are then replaced by template text:
//
//   - expr: a scalar value, e.g. `{{ .Release.Namespace }}`;
//   - block: template lines at a map key's place, indented like that key, e.g. an optional
//     `{{- with .Values.x }}` section or a value written by toYaml.
type templater struct {
	exprs  []string
	blocks []func(indent int) []string
}

var blockKey = regexp.MustCompile(`^(\s*(?:- )?)\S*__helmblock_(\d+)__: null$`)

// expr returns a placeholder for a scalar value that becomes the template text e.
func (t *templater) expr(e string) string {
	t.exprs = append(t.exprs, e)
	return fmt.Sprintf("__helm_%d__", len(t.exprs)-1)
}

// block puts template lines into m, where a key sortKey would be. lines gets the indentation of
// that key; every line is indented by it.
func (t *templater) block(m map[string]any, sortKey string, lines func(indent int) []string) {
	t.blocks = append(t.blocks, lines)
	m[fmt.Sprintf("%s__helmblock_%d__", sortKey, len(t.blocks)-1)] = nil
}

// valueBlock replaces m[key] by the value at path in values, written by toYaml.
func (t *templater) valueBlock(m map[string]any, key, path string) {
	delete(m, key)
	t.block(m, key, func(indent int) []string {
		return []string{key + ":", fmt.Sprintf("  {{- toYaml %s | nindent %d }}", path, indent+2)}
	})
}

// optionalBlock sets m[key] to the value at path, written by toYaml, when that value is not empty.
func (t *templater) optionalBlock(m map[string]any, key, path string) {
	delete(m, key)
	t.block(m, key, func(indent int) []string {
		return []string{
			fmt.Sprintf("{{- with %s }}", path),
			key + ":",
			fmt.Sprintf("  {{- toYaml . | nindent %d }}", indent+2),
			"{{- end }}",
		}
	})
}

// render writes obj as a template: the header, then the object inside `{{- if condition }}`
// when condition is not empty.
func (t *templater) render(obj *unstructured.Unstructured, header, condition string) ([]byte, error) {
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(data, []byte("{{")) {
		return nil, fmt.Errorf("%s %s contains {{, which Helm would read as a template", obj.GetKind(), obj.GetName())
	}
	var out strings.Builder
	out.WriteString(header)
	if condition != "" {
		fmt.Fprintf(&out, "{{- if %s }}\n", condition)
	}
	used := map[int]bool{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		if m := blockKey.FindStringSubmatch(line); m != nil {
			var i int
			_, _ = fmt.Sscanf(m[2], "%d", &i)
			used[i] = true
			prefix := m[1]
			indent := strings.Repeat(" ", len(prefix))
			for j, l := range t.blocks[i](len(prefix)) {
				if j == 0 {
					if strings.HasSuffix(prefix, "- ") && strings.HasPrefix(l, "{{") {
						return nil, fmt.Errorf("a block cannot start a list item with a template action (%s)", l)
					}
					out.WriteString(prefix + l + "\n")
					continue
				}
				out.WriteString(indent + l + "\n")
			}
			continue
		}
		out.WriteString(line + "\n")
	}
	if len(used) != len(t.blocks) {
		return nil, fmt.Errorf("%s %s: %d template blocks were placed, %d were made", obj.GetKind(), obj.GetName(), len(used), len(t.blocks))
	}
	text := out.String()
	for i := range t.exprs { // __helm_1__ is no part of __helm_10__: the order does not matter
		placeholder := fmt.Sprintf("__helm_%d__", i)
		if !strings.Contains(text, placeholder) {
			return nil, fmt.Errorf("%s %s: placeholder for %s was lost", obj.GetKind(), obj.GetName(), t.exprs[i])
		}
		text = strings.ReplaceAll(text, placeholder, t.exprs[i])
	}
	if condition != "" {
		text += "{{- end }}\n"
	}
	return []byte(text), nil
}
