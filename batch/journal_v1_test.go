package batch

import (
	"strconv"
	"time"
)

// The layout of journal version 1, which only tests write now: a journal
// written before version 2 must still resume.

// appendResultV1 encodes a result record in the layout of journal version 1
// (as json.Marshal would): journals written before version 2 hold it, and
// the tests write it to check they still read.
func appendResultV1(b []byte, r *Result) []byte {
	b = appendHead(b, "result", r.Index, r.Line, r.Target, r.User, r.Action)
	b = appendField(b, "outcome", string(r.Outcome))
	b = appendField(b, "detail", r.Detail)
	b = append(b, `,"http_status":`...)
	b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = appendField(b, "error_code", r.ErrorCode)
	b = appendField(b, "message", r.Message)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(r.Duration), 10)
	b = append(b, `,"finished_at":"`...)
	b = r.FinishedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","retries":`...)
	b = strconv.AppendInt(b, int64(r.Retries), 10)
	b = append(b, `,"writes":`...)
	b = strconv.AppendInt(b, int64(r.Writes), 10)
	return append(b, "}\n"...)
}

// appendHead opens a row's record: its type and the row it is about.
func appendHead(b []byte, typ string, index, line int, target, user string, action Action) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","i":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = appendField(b, "target", target)
	b = appendField(b, "user", user)
	return appendField(b, "action", string(action))
}

// appendIntentV1 encodes an intent record in the layout of journal version
// 1, as json.Marshal encodes record{Type: "intent", Result: ..., Attempt:
// attempt}, up to the escaping of strings (appendField's).
func appendIntentV1(b []byte, op *Op, attempt int) []byte {
	b = appendHead(b, "intent", op.Index, op.Line, op.Target, op.User, op.Action)
	b = append(b, `,"outcome":"","attempts":0,"duration_ns":0,"finished_at":"0001-01-01T00:00:00Z"`...)
	if attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(attempt), 10)
	}
	return append(b, "}\n"...)
}
