package batch

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// scanUser counts u's characters and checks them in one pass: this runs for
// every row of files with a million. hidden is the first character that
// cannot be seen (a control or format character, a line or paragraph
// separator, a filler), or -1.
func scanUser(u string) (runes int, valid bool, hidden rune) {
	valid, hidden = true, -1
	for i := 0; i < len(u); {
		c := u[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 || c == 0x7f) && hidden < 0 {
				hidden = rune(c)
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(u[i:])
			valid = valid && !(r == utf8.RuneError && size == 1)
			if hidden < 0 && isHidden(r) {
				hidden = r
			}
			i += size
		}
		runes++
	}
	return runes, valid, hidden
}

// isHidden reports whether r, outside ASCII, shows as nothing: a user id
// holding one looks right in a spreadsheet and matches no account.
func isHidden(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

// hiddenNames names the invisible characters most often met in ids copied
// from web pages, chats and spreadsheets.
var hiddenNames = map[rune]string{
	0x00: "NULL", 0x09: "CHARACTER TABULATION", 0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x7F: "DELETE",
	0x85: "NEXT LINE", 0xAD: "SOFT HYPHEN", 0x034F: "COMBINING GRAPHEME JOINER", 0x061C: "ARABIC LETTER MARK",
	0x115F: "HANGUL CHOSEONG FILLER", 0x1160: "HANGUL JUNGSEONG FILLER", 0x180E: "MONGOLIAN VOWEL SEPARATOR",
	0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER", 0x200D: "ZERO WIDTH JOINER",
	0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
	0x2028: "LINE SEPARATOR", 0x2029: "PARAGRAPH SEPARATOR",
	0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE",
	0x2060: "WORD JOINER", 0x2061: "FUNCTION APPLICATION", 0x2062: "INVISIBLE TIMES",
	0x2063: "INVISIBLE SEPARATOR", 0x2064: "INVISIBLE PLUS",
	0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE", 0x3164: "HANGUL FILLER", 0xFEFF: "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
	0xFFA0: "HALFWIDTH HANGUL FILLER",
}

// describeHidden names r and says what kind of character it is:
// "U+202E (RIGHT-TO-LEFT OVERRIDE), an invisible character".
func describeHidden(r rune) string {
	s := fmt.Sprintf("U+%04X", r)
	if name, ok := hiddenNames[r]; ok {
		s += " (" + name + ")"
	}
	switch {
	case unicode.IsControl(r):
		return s + ", a control character"
	case r == 0x2028 || r == 0x2029:
		return s + ", an invisible line break"
	}
	return s + ", an invisible character"
}

const scientificHelp = "the full id as text: in Excel, format the user column as Text before pasting or typing the ids, " +
	"or import the file with that column as Text, then export again"

// isScientific reports whether u is a number as Excel shows a long one:
// digits, a decimal point or comma and digits, then E, a sign and digits
// ("1.23457E+17", "1,23457E+17", "1E+15"). Excel always writes the sign,
// so an id such as 1e5 stays valid.
func isScientific(u string) bool {
	i := digits(u, 0)
	if i == 0 {
		return false
	}
	if i < len(u) && (u[i] == '.' || u[i] == ',') {
		j := digits(u, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i+2 >= len(u) || (u[i] != 'E' && u[i] != 'e') || (u[i+1] != '+' && u[i+1] != '-') {
		return false
	}
	return digits(u, i+2) == len(u)
}

// digits returns the index of the first byte of s at or after i that is
// not an ASCII digit.
func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
