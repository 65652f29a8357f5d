package batch

import (
	"strconv"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// numbers prints counts as an operator reads them: 26,325.
var numbers = message.NewPrinter(language.English)

// Thousands prints n with thousands separators: 26,325.
func Thousands(n int) string { return numbers.Sprintf("%d", n) }

// CountRows says how many rows, in the singular for one: "1 row", "2 rows".
func CountRows(n int) string {
	if n == 1 {
		return "1 row"
	}
	return strconv.Itoa(n) + " rows"
}
