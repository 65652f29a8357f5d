package ledger

import "io"

// WriteHistory writes entries to w in format: a shorthand only the tests use.
func WriteHistory(w io.Writer, format string, entries ...Entry) error {
	h, err := NewHistoryWriter(w, format)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := h.Write(e); err != nil {
			return err
		}
	}
	return h.Close()
}
