package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// EnvPrefix starts every environment variable that maps onto a key.
const EnvPrefix = "BROKKR__"

// EnvName is the environment form of a config key:
// "broker.pak_hash" → "BROKKR__BROKER__PAK_HASH".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// envKey is the inverse of EnvName; it returns "" for names outside the
// namespace.
func envKey(name string) string {
	rest, ok := strings.CutPrefix(name, EnvPrefix)
	if !ok || rest == "" {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(rest), "__", ".")
}

// hotKeys are the settings the original documents as hot-reloadable
// (docs/compatibility.md#hot-reload). Nothing else changes without a restart.
var hotKeys = []string{
	"log.level",
	"broker.diagnostic_cleanup_interval_seconds",
	"broker.diagnostic_max_age_hours",
	"broker.webhook_delivery_interval_seconds",
	"broker.webhook_delivery_batch_size",
	"broker.webhook_cleanup_retention_days",
	"cors.allowed_origins",
	"cors.max_age_seconds",
	// The work-order-scheduler re-reads its periods on every sync.
	"scheduler.maintenance_interval_seconds",
	"scheduler.schedule_interval_seconds",
	"scheduler.audit_cleanup_interval_seconds",
	"scheduler.rollout_interval_seconds",
}

// commaLists accept a comma-separated string in place of a list; the original
// allows this for the three CORS lists; http.trusted_proxies is ours.
var commaLists = map[string]bool{
	"cors.allowed_origins": true,
	"cors.allowed_methods": true,
	"cors.allowed_headers": true,
	"http.trusted_proxies": true,
	"redis.sentinel_addrs": true,
	"redis.cluster_addrs":  true,
}

// leaf is one settable key of Settings, found by walking the koanf tags, so
// the key list can never drift from the struct.
type leaf struct {
	key   string
	index []int
	typ   reflect.Type
}

var (
	leavesOnce sync.Once
	leafList   []leaf
	leafByKey  map[string]leaf
	sectionSet map[string]bool
)

func leaves() ([]leaf, map[string]leaf) {
	leavesOnce.Do(func() {
		leafByKey = map[string]leaf{}
		sectionSet = map[string]bool{}
		walk(reflect.TypeOf(Settings{}), "", nil)
		for _, l := range leafList {
			leafByKey[l.key] = l
		}
	})
	return leafList, leafByKey
}

func walk(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct {
			sectionSet[key] = true
			walk(f.Type, key, idx)
			continue
		}
		leafList = append(leafList, leaf{key: key, index: idx, typ: f.Type})
	}
}

// Keys lists every config key in struct order (for docs and tests).
func Keys() []string {
	ls, _ := leaves()
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.key
	}
	return out
}

// HotKeys lists the hot-reloadable keys.
func HotKeys() []string { return slices.Clone(hotKeys) }

func isSection(key string) bool {
	leaves()
	return sectionSet[key]
}

func (l leaf) field(s *Settings) reflect.Value {
	return reflect.ValueOf(s).Elem().FieldByIndex(l.index)
}

// flatten turns settings into key → value for the confmap provider. Nil
// override pointers are left out so they keep meaning "inherit".
func flatten(s Settings) map[string]any {
	ls, _ := leaves()
	out := make(map[string]any, len(ls))
	for _, l := range ls {
		v := l.field(&s)
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				continue
			}
			v = v.Elem()
		}
		out[l.key] = v.Interface()
	}
	return out
}

// set coerces raw (a TOML value, an env string or a default) into the field
// for l. The returned message names what was expected, never the value of a
// secret.
func (l leaf) set(s *Settings, raw any) error {
	v, err := coerce(l.key, raw, l.typ)
	if err != nil {
		return err
	}
	l.field(s).Set(v)
	return nil
}

func coerce(key string, raw any, t reflect.Type) (reflect.Value, error) {
	if t.Kind() == reflect.Pointer {
		v, err := coerce(key, raw, t.Elem())
		if err != nil {
			return reflect.Value{}, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(v)
		return p, nil
	}
	out := reflect.New(t).Elem()
	rv := reflect.ValueOf(raw)
	if !rv.IsValid() {
		return reflect.Value{}, fmt.Errorf("must not be empty")
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := scalarString(rv)
		if !ok {
			return reflect.Value{}, fmt.Errorf("must be a string")
		}
		out.SetString(s)
	case reflect.Bool:
		switch rv.Kind() {
		case reflect.Bool:
			out.SetBool(rv.Bool())
		case reflect.String:
			b, err := strconv.ParseBool(strings.TrimSpace(rv.String()))
			if err != nil {
				return reflect.Value{}, fmt.Errorf("must be true or false, got %q", rv.String())
			}
			out.SetBool(b)
		default:
			return reflect.Value{}, fmt.Errorf("must be true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toInt(rv)
		if err != nil {
			return reflect.Value{}, err
		}
		if out.OverflowInt(n) {
			return reflect.Value{}, fmt.Errorf("is out of range")
		}
		out.SetInt(n)
	case reflect.Float32, reflect.Float64:
		f, err := toFloat(rv)
		if err != nil {
			return reflect.Value{}, err
		}
		out.SetFloat(f)
	case reflect.Slice:
		if t.Elem().Kind() != reflect.String {
			return reflect.Value{}, fmt.Errorf("unsupported list type %s", t)
		}
		var items []string
		switch {
		case rv.Kind() == reflect.String && commaLists[key]:
			for part := range strings.SplitSeq(rv.String(), ",") {
				if p := strings.TrimSpace(part); p != "" {
					items = append(items, p)
				}
			}
		case rv.Kind() == reflect.Slice:
			for i := range rv.Len() {
				s, ok := scalarString(reflect.ValueOf(rv.Index(i).Interface()))
				if !ok {
					return reflect.Value{}, fmt.Errorf("must be a list of strings")
				}
				items = append(items, s)
			}
		default:
			if commaLists[key] {
				return reflect.Value{}, fmt.Errorf("must be a list of strings or a comma-separated string")
			}
			return reflect.Value{}, fmt.Errorf("must be a list of strings")
		}
		sv := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			sv.Index(i).SetString(it)
		}
		out.Set(sv)
	default:
		return reflect.Value{}, fmt.Errorf("unsupported type %s", t)
	}
	return out, nil
}

// scalarString accepts numbers and booleans for string keys: the original
// documents pak.digest as an integer while its code holds a string.
func scalarString(rv reflect.Value) (string, bool) {
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64), true
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true
	}
	return "", false
}

func toInt(rv reflect.Value) (int64, error) {
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > 1<<63-1 {
			return 0, fmt.Errorf("is out of range")
		}
		return int64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != float64(int64(f)) {
			return 0, fmt.Errorf("must be a whole number, got %v", f)
		}
		return int64(f), nil
	case reflect.String:
		n, err := strconv.ParseInt(strings.TrimSpace(rv.String()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("must be an integer, got %q", rv.String())
		}
		return n, nil
	}
	return 0, fmt.Errorf("must be an integer")
}

func toFloat(rv reflect.Value) (float64, error) {
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(rv.String()), 64)
		if err != nil {
			return 0, fmt.Errorf("must be a number, got %q", rv.String())
		}
		return f, nil
	}
	return 0, fmt.Errorf("must be a number")
}

// display renders a value the way the original's reload response does:
// plain scalars and Debug-style lists (["a", "b"]). Secrets stay redacted
// because secret.String implements fmt.Formatter.
func display(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = strconv.Quote(fmt.Sprint(v.Index(i).Interface()))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}
