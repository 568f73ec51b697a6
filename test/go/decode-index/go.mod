module manifest-guard/test/decode-index

go 1.19
