package batch

// The columns of the vendors these tests name (README "The operations CSV").
const (
	ColPlaceGenealogy = "place_genealogy"
	ColBlockUser      = "block_user"
	ColEmail          = "email"
)

// testRules are the rules of the vendors the parser tests name, by vendor.
// batch cannot import its vendors: vendors_ext_test.go, in package
// batch_test, fills this through SetTestRules before any test runs.
var testRules = map[string]TargetInfo{}

// SetTestRules records a vendor's columns and validator for withRules.
func SetTestRules(vendor string, info TargetInfo) { testRules[vendor] = info }

// withRules gives info its vendor's columns and validator.
func withRules(info TargetInfo) TargetInfo { return withRulesOf(info.Vendor, info) }

// withRulesOf gives info vendor's columns and validator.
func withRulesOf(vendor string, info TargetInfo) TargetInfo {
	r, ok := testRules[vendor]
	if !ok {
		panic("no test rules for vendor " + vendor)
	}
	info.Columns, info.Validator, info.Inverter = r.Columns, r.Validator, r.Inverter
	return info
}
