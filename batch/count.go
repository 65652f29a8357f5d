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

// Count says n of noun, in the singular for one: Count(1, "invalid row")
// is "1 invalid row", Count(2, "row") is "2 rows".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// CountRows is Count(n, "row").
func CountRows(n int) string { return Count(n, "row") }
