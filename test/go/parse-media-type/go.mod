module manifest-guard/test/parse-media-type

go 1.19
