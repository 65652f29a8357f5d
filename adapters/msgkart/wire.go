package msgkart

import (
	"encoding/json"
	"strings"
)

// The documented paths, after base_url and before the query. The user id
// segment sits between userPath and the verb.
const (
	userPath    = "/api/v1/business/user/"
	verbEnable  = "enable"
	verbDisable = "disable"
	verbStatus  = "status"
)

// The query parameters that carry the credential pair.
const (
	paramAPIKey = "apikey"
	paramEmail  = "email"
)

// statusDisabled is the one userStatus value that means disabled; every other
// value (Available, Busy, InCall, Away, ...) is an enabled user.
const statusDisabled = "Disabled"

// statusResponse is the answer to GET .../{userId}/status.
type statusResponse struct {
	UserStatus string `json:"userStatus"`
}

// messageOf returns the vendor's own text from an answer body: the "message"
// field (or "error", which some gateways use) when the body is a JSON object
// holding one as a string. It returns "" otherwise; the body shape of every
// answer but the status read is undocumented, so nothing here may fail.
func messageOf(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for _, key := range []string{"message", "error"} {
		var s string
		if raw, ok := fields[key]; ok && json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}
