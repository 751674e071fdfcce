package provision

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// The command-line form of a Doc: one line per field, so that the lines
// Lines prints, typed into a switch that has the defaults, rebuild the
// same Doc. The words come from the TOML names (a `cli` tag overrides):
//
//	gateway gw1 address 192.0.2.7:5060     an item of a list, by its name
//	subscriber 1001 account acme           (a subscriber, by its number)
//	analysis 3 prefix 44                   a list without names, by position
//	numbering country_code 33              a field of a section
//	rating tariff std currency EUR         an item of a list in a section
//	group g1 member gateway=gw1,priority=1 gateway=gw2,priority=2
//	no gateway gw1 | no gateway gw1 max_cps | no numbering country_code
//
// A list value is one word per element; an element of a list of tables
// is one word of name=value pairs. Set and Unset say precisely what is
// wrong with a line and change nothing then.

// keyFields name an item in its list, the first that the item has (a
// field tagged key:"true" comes first).
var keyFields = []string{"Number", "Name"}

// Section is a word that starts a configuration line, for the command
// line's help and completion.
type Section struct {
	Word   string
	Keyed  bool // items named by KeyOf; otherwise by position (lists) or none (sections)
	List   bool // a list of items; otherwise a section of fields
	Fields []Field
	Subs   []Section // the lists inside a section (rating tariff ...)
}

// Field is a settable field.
type Field struct {
	Word, Kind string // Kind: text, number, yes/no, list, ... for help
}

// Sections describes the Doc's lines.
func Sections() []Section {
	return sectionsOf(reflect.TypeOf(Doc{}), true)
}

func sectionsOf(t reflect.Type, top bool) []Section {
	var out []Section
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		w := word(f)
		if w == "" {
			continue
		}
		switch {
		case isTableList(f.Type):
			out = append(out, Section{Word: w, List: true, Keyed: keyIndex(f.Type.Elem()) >= 0, Fields: leafFields(f.Type.Elem())})
		case top && f.Type.Kind() == reflect.Struct:
			out = append(out, Section{Word: w, Fields: leafFields(f.Type), Subs: sectionsOf(f.Type, false)})
		}
	}
	return out
}

func leafFields(t reflect.Type) []Field {
	var out []Field
	k := keyIndex(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if i == k || word(f) == "" {
			continue
		}
		if isTableList(f.Type) && isSection(t) {
			continue // a list inside a section: its own Section
		}
		out = append(out, Field{Word: word(f), Kind: kindName(f.Type)})
	}
	return out
}

// isSection: a struct field of Doc whose lists are sub-sections.
func isSection(t reflect.Type) bool {
	dt := reflect.TypeOf(Doc{})
	for i := 0; i < dt.NumField(); i++ {
		if dt.Field(i).Type == t {
			return true
		}
	}
	return false
}

func kindName(t reflect.Type) string {
	if isText(t) {
		return "duration (e.g. 30s, 5m)"
	}
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "items NAME=VALUE,NAME=VALUE ..."
		}
		return kindName(t.Elem()) + " ..."
	}
	return t.Kind().String()
}

func word(f reflect.StructField) string {
	if w := f.Tag.Get("cli"); w != "" {
		return w
	}
	w, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if w == "-" {
		return ""
	}
	return w
}

func isTableList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

func keyIndex(t reflect.Type) int {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("key") == "true" {
			return i
		}
	}
	for _, k := range keyFields {
		if f, ok := t.FieldByName(k); ok && f.Type.Kind() == reflect.String {
			return f.Index[0]
		}
	}
	return -1
}

func fieldByWord(t reflect.Type, w string) (int, bool) {
	for i := 0; i < t.NumField(); i++ {
		if word(t.Field(i)) == w {
			return i, true
		}
	}
	return -1, false
}

func fieldWords(t reflect.Type, skip int) string {
	var ws []string
	for i := 0; i < t.NumField(); i++ {
		if i != skip && word(t.Field(i)) != "" {
			ws = append(ws, word(t.Field(i)))
		}
	}
	return strings.Join(ws, ", ")
}

// spot is what a line's words name: a field of an item, an item, a
// section or a whole list.
type spot struct {
	owner   reflect.Value // the struct holding field
	field   int           // -1: the item itself (or the whole list, when item < 0)
	list    reflect.Value // the slice holding the item, if any
	item    int
	dflt    reflect.Value // the section's default, for Unset of a section field
	rest    []string      // the value words
	created bool          // the item was appended for this line
}

// locate walks words through d. create: an item that is named but does
// not exist is appended.
func (d *Doc) locate(words []string, create bool) (spot, error) {
	if len(words) == 0 {
		return spot{}, errors.New("empty line")
	}
	v, def := reflect.ValueOf(d).Elem(), reflect.ValueOf(Default())
	i, ok := fieldByWord(v.Type(), words[0])
	if !ok || word(v.Type().Field(i)) == "" {
		return spot{}, fmt.Errorf("%q is not a section; expected one of %s", words[0], fieldWords(v.Type(), -1))
	}
	f := v.Field(i)
	if isTableList(f.Type()) {
		return listSpot(words[0], f, words[1:], create)
	}
	// A section: a field, or one of its lists.
	if len(words) < 2 {
		return spot{owner: v, field: i, item: -1, dflt: def.Field(i)}, nil
	}
	j, ok := fieldByWord(f.Type(), words[1])
	if !ok {
		return spot{}, fmt.Errorf("%s: %q is not a field; expected one of %s", words[0], words[1], fieldWords(f.Type(), -1))
	}
	if isTableList(f.Field(j).Type()) {
		return listSpot(words[0]+" "+words[1], f.Field(j), words[2:], create)
	}
	return spot{owner: f, field: j, dflt: def.Field(i).Field(j), rest: words[2:]}, nil
}

// listSpot finds the item words[0] names in list, and its field words[1].
func listSpot(name string, list reflect.Value, words []string, create bool) (spot, error) {
	t := list.Type().Elem()
	k := keyIndex(t)
	if len(words) == 0 {
		return spot{list: list, field: -1, item: -1}, nil
	}
	key, idx, created := words[0], -1, false
	if k >= 0 {
		if key == "" {
			return spot{}, fmt.Errorf("%s: the name must not be empty", name)
		}
		// From the end: a pasted configuration names the item just made.
		for n := list.Len() - 1; n >= 0; n-- {
			if list.Index(n).Field(k).String() == key {
				idx = n
				break
			}
		}
		if idx < 0 && create {
			list.Set(reflect.Append(list, reflect.New(t).Elem()))
			idx, created = list.Len()-1, true
			list.Index(idx).Field(k).SetString(key)
		}
	} else {
		n, err := strconv.Atoi(key)
		if err != nil || n < 1 {
			return spot{}, fmt.Errorf("%s: %q is not a position (1, 2, ...)", name, key)
		}
		if n <= list.Len() {
			idx = n - 1
		} else if create && n == list.Len()+1 {
			list.Set(reflect.Append(list, reflect.New(t).Elem()))
			idx, created = n-1, true
		} else if create {
			return spot{}, fmt.Errorf("%s: position %d: there are %d entries, a new one is %d", name, n, list.Len(), list.Len()+1)
		}
	}
	if idx < 0 {
		return spot{}, fmt.Errorf("%s %s does not exist", name, key)
	}
	item := list.Index(idx)
	if len(words) == 1 {
		return spot{list: list, item: idx, field: -1, created: created}, nil
	}
	j, ok := fieldByWord(t, words[1])
	if !ok || j == k {
		if created {
			unappend(list)
		}
		return spot{}, fmt.Errorf("%s %s: %q is not a field; expected one of %s", name, key, words[1], fieldWords(t, k))
	}
	return spot{owner: item, field: j, list: list, item: idx, rest: words[2:], created: created}, nil
}

// Set applies one configuration line (without "no").
//
// It changes d in place (a line costs what its list's search costs, not a
// copy of the whole Doc: a pasted configuration of many thousand lines
// stays quick); a refused line leaves d as it was: values are parsed
// before they are stored, and an item created for the line is taken back.
func (d *Doc) Set(words []string) (err error) {
	sp, err := d.locate(words, true)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && sp.created {
			unappend(sp.list)
		}
	}()
	if sp.field < 0 {
		if sp.list.IsValid() && sp.item >= 0 {
			return nil // the item alone: created if it was not there
		}
		return fmt.Errorf("%s: name a field", strings.Join(words, " "))
	}
	f := sp.owner.Field(sp.field)
	fname := word(sp.owner.Type().Field(sp.field))
	if f.Kind() == reflect.Struct && !isText(f.Type()) {
		return fmt.Errorf("%s: name a field; expected one of %s", fname, fieldWords(f.Type(), -1))
	}
	if len(sp.rest) == 0 && f.Kind() != reflect.Slice {
		return fmt.Errorf("%s: a value is missing (%s)", fname, kindName(f.Type()))
	}
	if err := setValue(f, sp.rest); err != nil {
		return fmt.Errorf("%s: %v", fname, err)
	}
	return nil
}

// Unset applies a "no" line: a field back to zero (in a section: to its
// default), an item or a whole list removed, a section back to defaults.
func (d *Doc) Unset(words []string) error {
	sp, err := d.locate(words, false) // changes nothing
	if err != nil {
		return err
	}
	switch {
	case len(sp.rest) > 0:
		return fmt.Errorf("no %s: nothing may follow the field's name", strings.Join(words[:len(words)-len(sp.rest)], " "))
	case sp.field >= 0 && sp.dflt.IsValid():
		sp.owner.Field(sp.field).Set(sp.dflt)
	case sp.field >= 0:
		f := sp.owner.Field(sp.field)
		f.Set(reflect.Zero(f.Type()))
	case sp.item >= 0:
		l := sp.list
		rest := reflect.AppendSlice(reflect.MakeSlice(l.Type(), 0, l.Len()-1), l.Slice(0, sp.item))
		l.Set(reflect.AppendSlice(rest, l.Slice(sp.item+1, l.Len())))
	case sp.list.IsValid():
		sp.list.Set(reflect.Zero(sp.list.Type()))
	}
	return nil
}

// clone is a deep copy, so that a refused line changes nothing.
func (d *Doc) clone() *Doc {
	c := reflect.New(reflect.TypeOf(*d))
	deepCopy(c.Elem(), reflect.ValueOf(*d))
	return c.Interface().(*Doc)
}

// Clone returns a deep copy of d.
func (d *Doc) Clone() *Doc { return d.clone() }

func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			deepCopy(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}

func setValue(f reflect.Value, ws []string) error {
	if f.Kind() != reflect.Slice {
		if len(ws) != 1 {
			return fmt.Errorf("one value expected, %d given (quote a value with blanks)", len(ws))
		}
		return setScalar(f, ws[0])
	}
	s := reflect.MakeSlice(f.Type(), len(ws), len(ws))
	for i, w := range ws {
		e := s.Index(i)
		if e.Kind() == reflect.Struct {
			if err := setTable(e, w); err != nil {
				return fmt.Errorf("item %d: %v", i+1, err)
			}
		} else if err := setScalar(e, w); err != nil {
			return fmt.Errorf("item %d: %v", i+1, err)
		}
	}
	if len(ws) == 0 {
		s = reflect.Zero(f.Type())
	}
	f.Set(s)
	return nil
}

func setScalar(f reflect.Value, w string) error {
	if isText(f.Type()) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(w))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(w)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", w)
		}
		f.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", w)
		}
		f.SetFloat(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(w)
		if err != nil {
			return fmt.Errorf("%q is not true or false", w)
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("cannot be set here")
	}
	return nil
}

// setTable reads NAME=VALUE,NAME=VALUE into a struct.
func setTable(e reflect.Value, w string) error {
	if w == "" {
		return errors.New("empty: NAME=VALUE,NAME=VALUE expected")
	}
	for _, kv := range strings.Split(w, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not NAME=VALUE", kv)
		}
		j, ok := fieldByWord(e.Type(), k)
		if !ok || e.Field(j).Kind() == reflect.Slice {
			var names []string
			for i := 0; i < e.NumField(); i++ {
				if e.Field(i).Kind() != reflect.Slice {
					names = append(names, word(e.Type().Field(i)))
				}
			}
			return fmt.Errorf("%q is not one of %s", k, strings.Join(names, ", "))
		}
		if err := setScalar(e.Field(j), v); err != nil {
			return fmt.Errorf("%s: %v", k, err)
		}
	}
	return nil
}

// Lines prints d as configuration lines.
func (d *Doc) Lines() []string {
	var out []string
	v, def := reflect.ValueOf(*d), reflect.ValueOf(Default())
	for i := 0; i < v.NumField(); i++ {
		w := word(v.Type().Field(i))
		if w == "" {
			continue
		}
		f := v.Field(i)
		if isTableList(f.Type()) {
			out = append(out, listLines(w, f)...)
			continue
		}
		for j := 0; j < f.NumField(); j++ {
			fw := word(f.Type().Field(j))
			if isTableList(f.Field(j).Type()) {
				out = append(out, listLines(w+" "+fw, f.Field(j))...)
			} else if !sameValue(f.Field(j), def.Field(i).Field(j)) {
				out = append(out, w+" "+fw+" "+valueWords(f.Field(j)))
			}
		}
	}
	return out
}

func listLines(prefix string, list reflect.Value) []string {
	var out []string
	t := list.Type().Elem()
	k := keyIndex(t)
	for n := 0; n < list.Len(); n++ {
		item := list.Index(n)
		key := strconv.Itoa(n + 1)
		if k >= 0 {
			key = Quote(item.Field(k).String())
		}
		head := prefix + " " + key
		some := false
		for j := 0; j < t.NumField(); j++ {
			f := item.Field(j)
			if j == k || word(t.Field(j)) == "" || f.IsZero() || (f.Kind() == reflect.Slice && f.Len() == 0) {
				continue
			}
			out = append(out, head+" "+word(t.Field(j))+" "+valueWords(f))
			some = true
		}
		if !some {
			out = append(out, head)
		}
	}
	return out
}

// valueWords prints a value as the words Set reads back.
func valueWords(f reflect.Value) string {
	if f.Kind() != reflect.Slice {
		return scalarWord(f)
	}
	ws := make([]string, f.Len())
	for i := range ws {
		e := f.Index(i)
		if e.Kind() == reflect.Struct {
			var kv []string
			for j := 0; j < e.NumField(); j++ {
				if !e.Field(j).IsZero() && e.Field(j).Kind() != reflect.Slice {
					kv = append(kv, word(e.Type().Field(j))+"="+fmt.Sprint(e.Field(j).Interface()))
				}
			}
			ws[i] = Quote(strings.Join(kv, ","))
		} else {
			ws[i] = scalarWord(e)
		}
	}
	return strings.Join(ws, " ")
}

func scalarWord(f reflect.Value) string {
	if m, ok := f.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return Quote(string(b))
	}
	if f.Kind() == reflect.String {
		return Quote(f.String())
	}
	return fmt.Sprint(f.Interface())
}

// Quote makes s one word of a command line: in double quotes when it is
// empty or holds a blank, a quote, a backslash, '|', '?' or '!'.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\|?!") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Describe turns a dotted key of the file's form ("gateway[1].address",
// "rating.tariff[0].rate[2].price") into the words of a configuration
// line ("gateway gw2 address", "rating tariff std rate (item 3) price"),
// for errors shown on the command line.
func (d *Doc) Describe(key string) string {
	v := reflect.ValueOf(*d)
	var out []string
	items := 0
	for _, seg := range strings.Split(key, ".") {
		name, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name = seg[:i]
			idx, _ = strconv.Atoi(strings.TrimSuffix(seg[i+1:], "]"))
		}
		if v.Kind() != reflect.Struct {
			return key
		}
		j, ok := fieldByWord(v.Type(), name)
		if !ok {
			return key
		}
		out = append(out, word(v.Type().Field(j)))
		v = v.Field(j)
		if idx < 0 {
			continue
		}
		if v.Kind() != reflect.Slice || idx >= v.Len() {
			return key
		}
		v = v.Index(idx)
		// The first item named is a word of the line (its name, or its
		// position); an item of a list inside an item, or of a list of
		// plain values, is not.
		k := -1
		if v.Kind() == reflect.Struct {
			k = keyIndex(v.Type())
		}
		switch {
		case items > 0 || v.Kind() != reflect.Struct:
			out = append(out, fmt.Sprintf("(item %d)", idx+1))
		case k >= 0:
			out = append(out, Quote(v.Field(k).String()))
		default:
			out = append(out, strconv.Itoa(idx+1))
		}
		items++
	}
	return strings.Join(out, " ")
}

// sameValue is DeepEqual, with an empty list equal to none.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// ItemOf tells which item a line names, for replaying lines on a newer
// Doc: the list holding it (nil for a line of a section's own fields),
// whether that list's items are named by position, and whether the item
// exists in d.
func (d *Doc) ItemOf(words []string) (list any, positional, exists bool) {
	l := listIn(d, words)
	if l == nil {
		return nil, false, false
	}
	positional = keyIndex(reflect.TypeOf(l).Elem()) < 0
	_, err := d.locate(words, false) // no create: d is not changed
	return l, positional, err == nil
}

// listIn is the list a line's first words name in d (nil if none).
func listIn(d *Doc, words []string) any {
	v := reflect.ValueOf(d).Elem()
	i, ok := fieldByWord(v.Type(), words[0])
	if !ok {
		return nil
	}
	f := v.Field(i)
	if isTableList(f.Type()) {
		return f.Interface()
	}
	if len(words) > 1 {
		if j, ok := fieldByWord(f.Type(), words[1]); ok && isTableList(f.Field(j).Type()) {
			return f.Field(j).Interface()
		}
	}
	return nil
}

// KeyError is a Doc that the command line could not print so that it
// reads back the same: Key is the dotted path of the value ("list[2].name").
type KeyError struct {
	Key, Reason string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

// CheckLines refuses what Lines could not print faithfully: an item with
// an empty or repeated name, a control character in any text, a ',' or
// '=' in a value of a list of tables inside an item (printed as
// NAME=VALUE,NAME=VALUE).
func (d *Doc) CheckLines() error {
	v := reflect.ValueOf(*d)
	for i := 0; i < v.NumField(); i++ {
		name := word(v.Type().Field(i))
		if name == "" {
			continue
		}
		f := v.Field(i)
		tomlName, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
		if tomlName == "-" {
			tomlName = name
		}
		if isTableList(f.Type()) {
			if err := checkList(tomlName, f); err != nil {
				return err
			}
			continue
		}
		if f.Kind() == reflect.Struct {
			for j := 0; j < f.NumField(); j++ {
				key := tomlName + "." + word(f.Type().Field(j))
				var err error
				if isTableList(f.Field(j).Type()) {
					err = checkList(key, f.Field(j))
				} else {
					err = checkText(key, f.Field(j), false)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkList(key string, list reflect.Value) error {
	k := keyIndex(list.Type().Elem())
	seen := map[string]bool{}
	for n := 0; n < list.Len(); n++ {
		item := list.Index(n)
		at := fmt.Sprintf("%s[%d]", key, n)
		if k >= 0 {
			name := item.Field(k).String()
			kw := at + "." + word(item.Type().Field(k))
			switch {
			case name == "":
				return &KeyError{kw, "must not be empty (it names the item on the command line)"}
			case seen[name]:
				return &KeyError{kw, fmt.Sprintf("%q is declared twice", name)}
			}
			seen[name] = true
		}
		for j := 0; j < item.NumField(); j++ {
			if err := checkText(at+"."+word(item.Type().Field(j)), item.Field(j), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkText looks at every text in v; inTable: v is inside an item of a
// list of tables within an item.
func checkText(key string, v reflect.Value, inTable bool) error {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return &KeyError{key, "holds a control character, which the command line cannot show"}
			}
		}
		if inTable && strings.ContainsAny(s, ",=") {
			return &KeyError{key, fmt.Sprintf("%q: ',' and '=' cannot stand in this value (the command line writes these items as NAME=VALUE,NAME=VALUE)", s)}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i)
			if e.Kind() == reflect.Struct {
				for j := 0; j < e.NumField(); j++ {
					if err := checkText(fmt.Sprintf("%s[%d].%s", key, i, word(e.Type().Field(j))), e.Field(j), true); err != nil {
						return err
					}
				}
			} else if err := checkText(fmt.Sprintf("%s[%d]", key, i), e, inTable); err != nil {
				return err
			}
		}
	}
	return nil
}

// unappend takes back the item appended last (a list that was empty is
// none again).
func unappend(list reflect.Value) {
	if list.Len() == 1 {
		list.Set(reflect.Zero(list.Type()))
		return
	}
	list.Set(list.Slice(0, list.Len()-1))
}

// Keys lists the names (or positions) of the items of the list that
// words name ("gateway", "rating tariff"), for completion.
func (d *Doc) Keys(words []string) []string {
	l := listIn(d, words)
	if l == nil {
		return nil
	}
	v := reflect.ValueOf(l)
	k := keyIndex(v.Type().Elem())
	out := make([]string, v.Len())
	for i := range out {
		if k >= 0 {
			out[i] = v.Index(i).Field(k).String()
		} else {
			out[i] = strconv.Itoa(i + 1)
		}
	}
	return out
}

// isText: a value written as text (a duration), set and printed as one
// word.
func isText(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem())
}
