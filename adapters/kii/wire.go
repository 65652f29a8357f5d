package kii

// The media types Kii documents for the user status endpoint.
const (
	mediaUpdateRequest     = "application/vnd.kii.UserStatusUpdateRequest+json"
	mediaRetrievalResponse = "application/vnd.kii.UserStatusRetrievalResponse+json"
)

// The errorCode values the adapter tells apart.
const (
	errUserNotFound = "USER_NOT_FOUND"
	errAppNotFound  = "APP_NOT_FOUND"
)

// statusUpdateRequest is the body of PUT .../status. Disabled must reach the
// wire as a JSON boolean: the vendor's sample shows it quoted, which it is not.
type statusUpdateRequest struct {
	Disabled bool `json:"disabled"`
}

// statusResponse is the body of a 200 to GET .../status. Disabled is a
// pointer so that an answer without it is told from "enabled".
type statusResponse struct {
	Disabled *bool `json:"disabled"`
}

// errorResponse holds the fields of every Kii error body the adapter reads:
// UserNotFoundException (field, value, appID), UnauthorizedAccessException,
// and the rest (errorCode, message).
type errorResponse struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	Value     string `json:"value"`
	AppID     string `json:"appID"`
}
