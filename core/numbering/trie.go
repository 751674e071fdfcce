package numbering

import (
	"math/bits"
	"slices"
)

// The trie is built once from sorted keys and never changed: a new table
// is a new trie, swapped in whole. Each node is 12 bytes: a bitmap of its
// children (13 symbols: # * + 0-9, in byte order so that sorted strings
// are sorted symbol strings), the index of its first child (siblings are
// contiguous) and the value stored at the node (-1 for none). A lookup is
// one array step per digit and allocates nothing.

// MaxPrefix is the longest key: 10 digits plus an optional leading +.
const MaxPrefix = 11

var symOf = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range []byte("#*+0123456789") {
		t[c] = int8(i)
	}
	return
}()

type node struct {
	kids  uint16
	first int32
	value int32
}

// trie maps prefixes to int32 values.
type trie struct{ nodes []node }

type kv struct {
	key   string
	value int32
}

// buildTrie builds from keys (distinct, each at most MaxPrefix symbols of
// the alphabet; callers validate).
func buildTrie(items []kv) *trie {
	slices.SortFunc(items, func(a, b kv) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	t := &trie{nodes: []node{{value: -1}}}
	// Breadth first: level holds, for each node of the current depth, its
	// index and the range of items that share its prefix.
	type span struct {
		idx    int32
		lo, hi int
	}
	level := []span{{0, 0, len(items)}}
	for depth := 0; len(level) > 0; depth++ {
		var next []span
		for _, s := range level {
			lo := s.lo
			if lo < s.hi && len(items[lo].key) == depth {
				t.nodes[s.idx].value = items[lo].value
				lo++
			}
			first := int32(len(t.nodes))
			var kids uint16
			for i := lo; i < s.hi; {
				c := items[i].key[depth]
				j := i + 1
				for j < s.hi && items[j].key[depth] == c {
					j++
				}
				kids |= 1 << uint(symOf[c])
				next = append(next, span{int32(len(t.nodes)), i, j})
				t.nodes = append(t.nodes, node{value: -1})
				i = j
			}
			t.nodes[s.idx].kids = kids
			t.nodes[s.idx].first = first
		}
		level = next
	}
	t.nodes = slices.Clip(t.nodes)
	return t
}

// matches writes to out the values of every stored prefix of n, shortest
// first, and returns how many there are.
func (t *trie) matches(n string, out *[MaxPrefix + 1]int32) int {
	if t == nil || len(t.nodes) == 0 {
		return 0
	}
	k := 0
	cur := &t.nodes[0]
	if cur.value >= 0 {
		out[k] = cur.value
		k++
	}
	for i := 0; i < len(n) && i < MaxPrefix; i++ {
		s := symOf[n[i]]
		if s < 0 {
			break
		}
		bit := uint16(1) << uint(s)
		if cur.kids&bit == 0 {
			break
		}
		cur = &t.nodes[cur.first+int32(bits.OnesCount16(cur.kids&(bit-1)))]
		if cur.value >= 0 {
			out[k] = cur.value
			k++
		}
	}
	return k
}

// longest returns the value of the longest stored prefix of n.
func (t *trie) longest(n string) (int32, bool) {
	var buf [MaxPrefix + 1]int32
	k := t.matches(n, &buf)
	if k == 0 {
		return -1, false
	}
	return buf[k-1], true
}

func (t *trie) size() int {
	if t == nil {
		return 0
	}
	return len(t.nodes)
}
