// Decodes JSON documents the way the registry and the Go clients do (encoding/json into
// structs), for the property test that compares manifest-guard's reading with Go's.
// Input: one document per line, "index <base64>" or "image <base64>". Output: one JSON line
// per document, {"ok":…} with every field the proxy reads, or {"error":"…"} when
// encoding/json refuses the document.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
)

type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version"`
	OSFeatures   []string `json:"os.features"`
	Variant      string   `json:"variant"`
	Features     []string `json:"features"`
}

type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls"`
	Annotations  map[string]string `json:"annotations"`
	Data         string            `json:"data"`
	Platform     *Platform         `json:"platform"`
	ArtifactType string            `json:"artifactType"`
}

type Index struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	Manifests     []Descriptor      `json:"manifests"`
	Config        interface{}       `json:"config"`
	Layers        interface{}       `json:"layers"`
}

type Image struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
}

// What is printed: interface{} fields only say whether they are set.
type Printed struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	Manifests     []Descriptor      `json:"manifests"`
	Config        bool              `json:"config"`
	Layers        bool              `json:"layers"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		kind, encoded, _ := strings.Cut(in.Text(), " ")
		doc, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			panic(err)
		}
		if kind == "image" {
			var image Image
			if err := json.Unmarshal(doc, &image); err != nil {
				enc.Encode(map[string]string{"error": err.Error()})
			} else {
				enc.Encode(map[string]Image{"ok": image})
			}
			continue
		}
		var index Index
		if err := json.Unmarshal(doc, &index); err != nil {
			enc.Encode(map[string]string{"error": err.Error()})
			continue
		}
		enc.Encode(map[string]Printed{"ok": {index.SchemaVersion, index.MediaType, index.ArtifactType, index.Subject, index.Annotations, index.Manifests, index.Config != nil, index.Layers != nil}})
	}
}
