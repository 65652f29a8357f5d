package clearsquare

// manageStatusPath is appended to base_url. The endpoint takes no desired
// state: every accepted call flips the user between active and inactive.
const manageStatusPath = "/api/users/manage-status"

// manageStatusRequest is the body of POST /api/users/manage-status. The
// vendor wants the same JWT in the body as in the Authorization header.
type manageStatusRequest struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// manageStatusResponse is every answer the vendor documents, success
// (200, status "success") and failure (401, status "error") alike.
type manageStatusResponse struct {
	Message string `json:"message"`
	Status  string `json:"status"`
}

// statusError is the value of manageStatusResponse.Status on a failure.
const statusError = "error"
