package batch_test

import (
	"github.com/userbatch/userbatch/adapters/epixel"
	"github.com/userbatch/userbatch/adapters/msgkart"
	"github.com/userbatch/userbatch/batch"
)

// The parser's tests drive the real vendors' rules, from their folders.
func init() {
	batch.SetTestRules("epixel", batch.TargetInfo{Columns: epixel.Rules{}.Columns(), Validator: epixel.Rules{}, Inverter: epixel.Rules{}})
	batch.SetTestRules("msgkart", batch.TargetInfo{Columns: msgkart.Rules{}.Columns(), Validator: msgkart.Rules{}})
}
