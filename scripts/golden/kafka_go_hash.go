// Reference partitions for kafkit's Hash and ReferenceHash balancers, computed with Go's
// own hash/fnv and integer semantics using the formulas kafka-go documents:
//   Hash:          int32(fnv1a(key)) % int32(n), negated when negative
//   ReferenceHash: (int32(fnv1a(key)) & 0x7fffffff) % int32(n)
// Run with scripts/golden/kafka_go_hash.sh (Debian's golang-go; no modules needed).
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
)

func main() {
	var keys []string
	for i := 0; i < 1000; i++ {
		keys = append(keys, fmt.Sprintf("key-%d", i))
	}
	for i := 0; i < 100; i++ {
		keys = append(keys, fmt.Sprintf("user:%d", i*7919))
	}
	keys = append(keys, "", "a", "ab", "abc", "abcd", "20", "21", "foobar", "blah", "boop", "日本語のキー")
	for n := 1; n < 92; n++ {
		keys = append(keys, strings.Repeat("x", n))
	}
	type pick struct {
		Hash          int32 `json:"hash"`
		ReferenceHash int32 `json:"reference_hash"`
	}
	out := map[string]map[string]pick{}
	for _, n := range []int32{7, 16, 64} {
		m := map[string]pick{}
		for _, k := range keys {
			h := fnv.New32a()
			h.Write([]byte(k))
			sum := h.Sum32()
			p := int32(sum) % n
			if p < 0 {
				p = -p
			}
			m[k] = pick{Hash: p, ReferenceHash: (int32(sum) & 0x7fffffff) % n}
		}
		out[fmt.Sprint(n)] = m
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.Encode(out)
}
