package scim

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The media type RFC 7644 §8.1 gives SCIM messages. Answers in
// application/json are accepted too: many providers send it.
const mediaSCIM = "application/scim+json"

// The message schemas the adapter sends or reads (RFC 7644 §3.5.2, §3.12).
const (
	schemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError   = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// userNamePrefix marks a user cell that names a userName instead of an id.
const userNamePrefix = "userName:"

// serviceProviderConfig holds what the adapter reads of RFC 7643 §5. A
// feature absent from the answer is taken as not supported.
type serviceProviderConfig struct {
	Patch  supported `json:"patch"`
	ETag   supported `json:"etag"`
	Bulk   supported `json:"bulk"`
	Filter struct {
		Supported  flexBool `json:"supported"`
		MaxResults int      `json:"maxResults"`
	} `json:"filter"`
}

type supported struct {
	Supported flexBool `json:"supported"`
}

// patchRequest is the body of PATCH /Users/{id}: exactly one operation, as
// AWS IAM Identity Center rejects several on "active".
type patchRequest struct {
	Schemas    []string         `json:"schemas"`
	Operations []patchOperation `json:"Operations"`
}

type patchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value bool   `json:"value"`
}

func activePatch(active bool) patchRequest {
	return patchRequest{
		Schemas:    []string{schemaPatchOp},
		Operations: []patchOperation{{Op: "replace", Path: "active", Value: active}},
	}
}

// userResource is what the adapter reads of a User (RFC 7643 §4.1). Active
// is a pointer so that a resource without it is told from an inactive one.
type userResource struct {
	ID       string    `json:"id"`
	UserName string    `json:"userName"`
	Active   *flexBool `json:"active"`
	Meta     struct {
		Version string `json:"version"`
	} `json:"meta"`
	// Emails stays raw: a provider's odd emails must not fail a read
	// that needs only id and active.
	Emails json.RawMessage `json:"emails"`
}

// names are every name the resource gives its user: id, userName and the
// emails' values (RFC 7643 §4.1.2), for protected patterns to match.
func (u userResource) names() []string {
	names := []string{u.ID}
	if u.UserName != "" {
		names = append(names, u.UserName)
	}
	var emails []struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(u.Emails, &emails) != nil {
		return names
	}
	for _, e := range emails {
		if e.Value != "" {
			names = append(names, e.Value)
		}
	}
	return names
}

// listResponse is the answer to a query (RFC 7644 §3.4.2). Resources keep
// their raw JSON: a PUT fallback sends one back whole.
type listResponse struct {
	TotalResults int               `json:"totalResults"`
	Resources    []json.RawMessage `json:"Resources"`
}

// errorResponse is the SCIM error body (RFC 7644 §3.12). Status is a string
// in the RFC; some providers send a number, so it is kept raw.
type errorResponse struct {
	Schemas  []string        `json:"schemas"`
	Status   json.RawMessage `json:"status"`
	ScimType string          `json:"scimType"`
	Detail   string          `json:"detail"`
	// Message is not SCIM, but several providers put their text there.
	Message string `json:"message"`
}

// flexBool is a JSON boolean that also accepts the strings "true" and
// "false" in any case: providers built against Entra ID's old habit of
// quoting booleans send them so.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v bool
	if err := json.Unmarshal(data, &v); err == nil {
		*b = flexBool(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("%q is not a boolean", s)
	}
	return nil
}
