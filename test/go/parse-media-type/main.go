// Reads Content-Type values the way the registry does (mime.ParseMediaType of Go 1.19), for
// the differential test of src/oci/mime.ts. Input: one value per line, hex-encoded bytes.
// Output: one JSON line per value: {"mediaType":hex,"params":[[hex,hex],…],"error":"…"},
// params sorted by key. Hex, because Go strings are bytes and need not be UTF-8.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"mime"
	"os"
	"sort"
)

type reading struct {
	MediaType string      `json:"mediaType"`
	Params    [][2]string `json:"params"`
	Error     string      `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		v, err := hex.DecodeString(in.Text())
		if err != nil {
			panic(err)
		}
		mt, params, err := mime.ParseMediaType(string(v))
		r := reading{MediaType: hex.EncodeToString([]byte(mt)), Params: [][2]string{}}
		if err != nil {
			r.Error = err.Error()
		}
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			r.Params = append(r.Params, [2]string{hex.EncodeToString([]byte(k)), hex.EncodeToString([]byte(params[k]))})
		}
		enc.Encode(r)
	}
}
