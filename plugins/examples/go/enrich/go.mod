module weir.dev/examples/enrich

go 1.24
