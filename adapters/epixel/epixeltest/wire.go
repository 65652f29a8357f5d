package epixeltest

import (
	"net/url"
	"strings"
)

// endpoint is one documented path.
type endpoint int

const (
	epBlock endpoint = iota + 1
	epUnblock
	epUpgrade
	epDowngrade
)

// route maps the documented paths, trailing slash included, to what they do.
func route(path string) (endpoint, bool) {
	switch path {
	case "/block/user/":
		return epBlock, true
	case "/unblock/user/":
		return epUnblock, true
	case "/upgrade/user-role/":
		return epUpgrade, true
	case "/downgrade/user-role/":
		return epDowngrade, true
	}
	return 0, false
}

// The documented form fields.
const (
	fieldUniqueID    = "unique_id"
	fieldUpgradeTo   = "upgrade_to"
	fieldGenealogy   = "api_place_genealogy"
	fieldDowngradeTo = "downgrade_to"
	fieldBlockUser   = "api_block_user"
)

// The documented 400 messages shared by several fields.
const (
	msgRequired = "This field is required and its may not be blank."
	msgNoUser   = "User not exist or invalid unique id."
	msgChoice   = "Choose a valid option."
)

// envelope is the shape of every answer:
// {"status_code":200,"errors":{},"data":{}}.
type envelope struct {
	StatusCode int      `json:"status_code"`
	Errors     any      `json:"errors"`
	Data       struct{} `json:"data"`
}

// detailEnvelope is a non-validation error: {"errors":{"detail":"..."}}.
func detailEnvelope(status int, msg string) envelope {
	return envelope{StatusCode: status, Errors: map[string]string{"detail": msg}}
}

// fieldErrors are 400 messages by field, as {"unique_id":["..."]}.
type fieldErrors map[string][]string

func (e fieldErrors) add(field, msg string) { e[field] = append(e[field], msg) }

// request is a parsed form: the user, and for role changes the role asked
// and api_place_genealogy (upgrade) or api_block_user (downgrade).
type request struct {
	ep   endpoint
	id   string
	role string
	flag bool
}

// parse reads and validates the fields ep takes. Validation that needs the
// stored user (does it exist) happens later, under the lock.
func parse(ep endpoint, form url.Values) (request, fieldErrors) {
	errs := fieldErrors{}
	req := request{ep: ep, id: form.Get(fieldUniqueID)}
	validID(req.id, errs)
	switch ep {
	case epUpgrade:
		req.role = role(form, fieldUpgradeTo, "Invalid upgrade option, Choose a valid one.", errs, Member, PreferredCustomer)
		req.flag = flag(form, fieldGenealogy, req.role == PreferredCustomer, errs)
	case epDowngrade:
		req.role = role(form, fieldDowngradeTo, "Invalid downgrade option, Choose a valid one.", errs, Customer, PreferredCustomer)
		req.flag = flag(form, fieldBlockUser, false, errs)
	}
	return req, errs
}

// role reads a required field that must be one of choices, spelled exactly.
func role(form url.Values, field, invalid string, errs fieldErrors, choices ...string) string {
	v := form.Get(field)
	if strings.TrimSpace(v) == "" {
		errs.add(field, msgRequired)
		return ""
	}
	for _, c := range choices {
		if v == c {
			return v
		}
	}
	errs.add(field, invalid)
	return ""
}

// flag reads a True/False field. A missing field is False unless required;
// a present one must be exactly True or False.
func flag(form url.Values, field string, required bool, errs fieldErrors) bool {
	vs, present := form[field]
	switch {
	case (!present || vs[0] == "") && required:
		errs.add(field, msgRequired)
	case !present:
	case vs[0] == "True":
		return true
	case vs[0] != "False":
		errs.add(field, msgChoice)
	}
	return false
}
