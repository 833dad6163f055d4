package plan

import "encoding/json"

// fieldsContain reports whether a managedFields FieldsV1 document holds the given path.
func fieldsContain(raw []byte, path []string) bool {
	var node map[string]json.RawMessage
	if err := json.Unmarshal(raw, &node); err != nil {
		return false
	}
	for i, key := range path {
		child, ok := node[key]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		node = nil
		if err := json.Unmarshal(child, &node); err != nil {
			return false
		}
	}
	return false
}
