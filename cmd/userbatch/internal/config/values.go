package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeOf(time.Duration(0))

// decodeScalar parses s into the field fv by the field's type. The error
// says what is accepted, to follow `key "value"`.
func decodeScalar(fv reflect.Value, s string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("must be a Go duration such as 30s or 5m")
		}
		fv.SetInt(int64(d))
	case fv.Type() == reflect.TypeOf(Concurrency{}):
		c, err := parseConcurrency(s)
		if err != nil {
			return err
		}
		fv.Set(reflect.ValueOf(c))
	case fv.Kind() == reflect.String:
		fv.SetString(s)
	case fv.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return errors.New("must be a number above 0")
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("must be a whole number")
		}
		fv.SetInt(int64(n))
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("must be true or false")
		}
		fv.SetBool(b)
	default:
		return fmt.Errorf("has a type (%s) the config cannot read", fv.Type())
	}
	return nil
}

func parseConcurrency(s string) (Concurrency, error) {
	if s == "auto" {
		return Concurrency{Auto: true, Max: AutoCeiling}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Concurrency{}, errors.New("must be auto or a whole number of at least 1")
	}
	return Concurrency{Max: n}, nil
}

// check validates the settings that have rules beyond their type.
func (t *Target) check() error {
	switch {
	case t.Burst < 1:
		return fmt.Errorf("line %d: burst must be a whole number of at least 1", t.at("burst"))
	case t.Timeout <= 0:
		return fmt.Errorf("line %d: timeout %v must be above 0, such as 30s or 1m", t.at("timeout"), t.Timeout)
	case t.MaxWait <= 0:
		return fmt.Errorf("line %d: max_wait %v must be above 0, such as 5m", t.at("max_wait"), t.MaxWait)
	case t.MaxChanges < 0:
		return fmt.Errorf("line %d: max_changes must be 0 (no limit) or more", t.at("max_changes"))
	}
	id := t.identity()
	for _, p := range t.Protected {
		// Patterns match without the vendor's id-form prefix: LOGIN_NAME:*
		// is a lone * too.
		if strings.TrimSpace(p) == "" || strings.Trim(id.Bare(p), "*") == "" {
			return fmt.Errorf("line %d: protected holds %q: give user ids, or globs with some fixed text (a lone *, with or without an id-form prefix, would protect everyone)", t.at("protected"), p)
		}
	}
	return checkBaseURL(t.BaseURL, t.InsecureHTTP, t.at("base_url"))
}

// at is the line where key was set, or the target's own line.
func (t *Target) at(key string) int {
	if l, ok := t.lines[key]; ok {
		return l
	}
	return t.Line
}

// checkBaseURL refuses what would send credentials in clear text over a
// network: plain http is for loopback only, unless the operator says so.
func checkBaseURL(raw string, insecure bool, line int) error {
	if raw == "" {
		return fmt.Errorf("line %d: base_url is required", line)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("line %d: base_url %q must be an http:// or https:// URL with a host", line, redactURL(raw))
	}
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("line %d: base_url %q uses plain http to a host that is not loopback: credentials would cross the network unencrypted (use https, or set insecure_http: true)", line, redactURL(raw))
	}
	return nil
}

var refPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// expand replaces ${VAR} with the environment variable and ${file:/path}
// with the file's content less one trailing newline, for mounted secrets.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var firstErr error
	out := refPattern.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			v, err := readSecretFile(path)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return v
		}
		v, ok := lookup(name)
		if !ok && firstErr == nil {
			firstErr = fmt.Errorf("environment variable %s is not set", name)
		}
		return v
	})
	return out, firstErr
}

// maxSecretFile bounds a ${file:} value: a secret is short; /dev/zero is not.
const maxSecretFile = 64 << 10

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading ${file:%s}: %v", path, err)
	}
	defer f.Close()
	b := make([]byte, maxSecretFile+1)
	n, err := io.ReadFull(f, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err != nil {
		return "", fmt.Errorf("reading ${file:%s}: %v", path, err)
	}
	if n > maxSecretFile {
		return "", fmt.Errorf("${file:%s} is larger than %d KiB: not a secret", path, maxSecretFile>>10)
	}
	v := strings.TrimSuffix(string(b[:n]), "\n")
	return strings.TrimSuffix(v, "\r"), nil
}
