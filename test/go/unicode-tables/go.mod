module manifest-guard/test/unicode-tables

go 1.19
